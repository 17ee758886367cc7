"""A tick's camera frames split over threads: the same features, a worker that never holds the tick up, its
failures raised in the tick, its scheduling the tick's."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from robot_rl.nets import frame_split
from robot_rl.nets.encoders import ResNet10, fold_batchnorm
from robot_rl.nets.fast_trunk import prepare_trunk
from robot_rl.nets.frame_split import FrameSplitter


def _frames(n: int, size: int = 64) -> torch.Tensor:
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_split_features_equal_one_pass_for_any_frame_count(runtime):
    if runtime == "onnxruntime":
        pytest.importorskip(
            "onnxruntime", reason="onnxruntime not installed: pip install 'robot_rl[onnx]' (./run.sh installs it)"
        )
    trunk = prepare_trunk(fold_batchnorm(ResNet10().eval()), (64, 64, 3), 2, runtime)
    splitter = FrameSplitter(3)
    with torch.no_grad():
        for n in (1, 2, 3, 5):
            frames = _frames(n)
            exact = {"rtol": 0, "atol": 0} if runtime == "onnxruntime" else {}  # oneDNN's kernels follow the batch
            torch.testing.assert_close(splitter(trunk, frames), trunk(frames), **exact)


def test_a_worker_runs_a_part_while_the_caller_runs_its_own():
    """The caller's part waits until a worker has started the other: both run at once, on two threads."""
    started = threading.Event()
    threads_seen = {}

    def run(frames: torch.Tensor) -> torch.Tensor:
        first = int(frames[0, 0, 0, 0]) == 0
        threads_seen[first] = threading.current_thread().name
        if first:
            assert started.wait(5.0), "no worker took the second part while the first ran"
        else:
            started.set()
        return frames.float().mean(dim=(1, 2, 3))

    frames = _frames(2)
    frames[0, 0, 0, 0], frames[1, 0, 0, 0] = 0, 1
    splitter = FrameSplitter(2)
    torch.testing.assert_close(splitter(run, frames), frames.float().mean(dim=(1, 2, 3)))
    assert threads_seen[True] == threading.current_thread().name
    assert threads_seen[False].startswith("frame-worker")
    assert splitter.parts_run_by_workers == 1 and splitter.parts_taken_back == 0


def test_a_busy_worker_never_holds_the_caller_up_its_part_is_taken_back():
    release, busy = threading.Event(), threading.Event()

    def blocking(frames: torch.Tensor) -> torch.Tensor:
        if int(frames[0, 0, 0, 0]) == 1:  # the first call's second part: it holds the only worker
            busy.set()
            release.wait(10.0)
        elif int(frames[0, 0, 0, 0]) == 0:  # the first call's own part waits for the worker to take the other
            busy.wait(5.0)
        return frames.float().sum(dim=(1, 2, 3))

    splitter = FrameSplitter(2)
    held = _frames(2)
    held[0, 0, 0, 0], held[1, 0, 0, 0] = 0, 1
    first = threading.Thread(target=lambda: splitter(blocking, held), daemon=True)
    first.start()
    assert busy.wait(5.0)
    frames = _frames(2)
    frames[:, 0, 0, 0] = 2
    got = splitter(blocking, frames)  # the worker is busy: its part comes back to this thread
    torch.testing.assert_close(got, frames.float().sum(dim=(1, 2, 3)))
    assert splitter.parts_taken_back == 1
    release.set()
    first.join(5.0)
    assert not first.is_alive() and splitter.parts_run_by_workers == 1


def test_a_failure_in_a_workers_part_is_raised_in_the_caller():
    failing = threading.Event()

    def run(frames: torch.Tensor) -> torch.Tensor:
        if int(frames[0, 0, 0, 0]) == 1:  # the worker's part
            failing.set()
            raise RuntimeError("bad frame")
        failing.wait(5.0)  # the caller's part ends once the worker has taken its own
        return frames.float()

    frames = _frames(2)
    frames[0, 0, 0, 0], frames[1, 0, 0, 0] = 0, 1
    with pytest.raises(RuntimeError, match="bad frame"):
        FrameSplitter(2)(run, frames)


def test_the_workers_run_at_the_given_sched_fifo_priority_and_say_so():
    seen, started = {}, threading.Event()

    def run(frames: torch.Tensor) -> torch.Tensor:
        if int(frames[0, 0, 0, 0]) == 1:
            seen["worker"] = (os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(0).sched_priority)
            started.set()
        else:
            started.wait(5.0)
        return frames.float()

    frames = _frames(2)
    frames[0, 0, 0, 0], frames[1, 0, 0, 0] = 0, 1
    splitter = FrameSplitter(2, priority=10)
    try:
        (line,) = splitter.priority_lines
        if "not permitted" in line:
            pytest.skip("SCHED_FIFO not permitted: run as root, with CAP_SYS_NICE or a `ulimit -r` of 10 or more")
        assert line.startswith("frame-worker-0 (tid ") and "SCHED_FIFO rt 10" in line, line
        splitter(run, frames)
        assert seen["worker"] == (os.SCHED_FIFO, 10)
    finally:
        splitter.close()


def test_acting_passes_split_only_once_asked():
    calls = []

    def run(frames: torch.Tensor) -> torch.Tensor:
        calls.append(len(frames))
        return frames.float()

    try:
        frame_split.set_frame_threads(1)
        frame_split.acting_pass(run, _frames(2))
        assert calls == [2]
        frame_split.set_frame_threads(2)
        frame_split.acting_pass(run, _frames(2))
        assert sorted(calls[1:]) == [1, 1]
    finally:
        frame_split.set_frame_threads(1)
    with pytest.raises(ValueError, match="frame threads must be >= 1"):
        FrameSplitter(0)
