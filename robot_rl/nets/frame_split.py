"""One tick's camera frames through the frozen trunk on several threads at once: the tick's thread and workers.

Acting runs the frozen trunk on one frame per camera each control period, as one batch on one thread: two 128x128
frames take ~12 ms of a 15 ms inference goal on onnxruntime (robot_rl.nets.fast_trunk). The frames are independent,
so `FrameSplitter` splits the batch: the calling thread runs the first part while workers run the others
(onnxruntime releases the GIL while it runs), then it takes back any part no worker has started -- so a worker that
is not scheduled in time never costs more than running that part here. Every part goes through the same pass and
the features are concatenated in order: onnxruntime's are bit-identical to the whole batch's, eager torch's equal
to float rounding (oneDNN picks its kernels by batch size).

The workers start with the splitter at the control thread's priority (`priority`: SCHED_FIFO where permitted, else
nice -10, else ordinary; robot_rl.acting.realtime): a part is handed over once per tick, and an ordinary worker woken
on two cores busy with learners was often not running before the tick's thread had finished its own part (of 402
parts, 152 came back). Between parts a worker sleeps, taking no CPU, so holding the priority costs nothing.

Session 17, 2 cores under 3 learning runs (load 3), two 128x128 frames on onnxruntime with one intra-op thread,
60 repeats x 3, interleaved: one batch p50 25-31 ms / p99 34-42 ms, split in two 20-21 / 29-32 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

from robot_rl.acting.realtime import raise_thread_priority

Runner = Callable[[torch.Tensor], torch.Tensor]


class _Part:
    __slots__ = ("frames", "run", "state", "result", "error", "done")

    def __init__(self, frames: torch.Tensor, run: Runner) -> None:
        self.frames, self.run = frames, run
        self.state = "queued"  # -> "taken" (by a worker) or "stolen" (back by the caller)
        self.result: torch.Tensor | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class FrameSplitter:
    """`splitter(run, frames)` == `run(frames)`, the frames split over the calling thread and `threads - 1` workers
    (daemon threads at `priority`, started here; `priority_lines` says what each got)."""

    def __init__(self, threads: int, priority: int = 0) -> None:
        if threads < 1:
            raise ValueError(f"frame threads must be >= 1, got {threads}")
        self.threads, self.priority = threads, priority
        self._cv = threading.Condition()
        self._queue: list[_Part] = []
        self.priority_lines: list[str] = []
        self._closed = False
        self.parts_run_by_workers = self.parts_taken_back = 0
        started = threading.Barrier(threads)
        for i in range(threads - 1):
            threading.Thread(target=self._work, args=(started,), name=f"frame-worker-{i}", daemon=True).start()
        started.wait(10.0)  # every worker's priority is set before the first part

    def __call__(self, run: Runner, frames: torch.Tensor) -> torch.Tensor:
        n_parts = min(self.threads, len(frames))
        if n_parts < 2:
            return run(frames)
        chunks = frames.tensor_split(n_parts)
        parts = [_Part(c, run) for c in chunks[1:]]
        with self._cv:
            self._queue.extend(parts)
            self._cv.notify(len(parts))
        first = run(chunks[0])
        for part in parts:  # take back what no worker has started: never wait on a worker that is not running
            with self._cv:
                if part.state == "queued":
                    part.state = "stolen"
                    self._queue.remove(part)
            if part.state == "stolen":
                self.parts_taken_back += 1
                part.result = run(part.frames)
            else:
                part.done.wait()
                self.parts_run_by_workers += 1
                if part.error is not None:
                    raise part.error
        return torch.cat([first, *(p.result for p in parts)])

    def close(self) -> None:
        """The workers end (once done with a part they run); calls after this run every part on the caller."""
        with self._cv:
            self._closed, self.threads = True, 1
            self._cv.notify_all()

    def _work(self, started: threading.Barrier) -> None:
        got = raise_thread_priority(self.priority, what=threading.current_thread().name)
        with self._cv:
            self.priority_lines.append(got.line)
        started.wait(10.0)
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                part = self._queue.pop(0)
                part.state = "taken"
            try:
                part.result = part.run(part.frames)
            except BaseException as err:  # noqa: BLE001 -- handed to the caller, which raises it
                part.error = err
            part.done.set()


_splitter: FrameSplitter | None = None


def set_frame_threads(threads: int, priority: int = 0) -> list[str]:
    """Acting's frozen-trunk passes in this process split their frames over `threads` threads (1: one pass), the
    workers at `priority` (SCHED_FIFO where permitted; 0: as started). Returns the workers' priority lines."""
    global _splitter
    if _splitter is not None:
        _splitter.close()
    _splitter = FrameSplitter(threads, priority) if threads > 1 else None
    return [] if _splitter is None else list(_splitter.priority_lines)


def acting_pass(run: Runner, frames: torch.Tensor) -> torch.Tensor:
    """`run(frames)`, split over the threads `set_frame_threads` asked for."""
    return run(frames) if _splitter is None else _splitter(run, frames)


def split_counts() -> dict[str, int] | None:
    """Parts of acting passes run by workers and taken back by the asking thread so far (None: not splitting)."""
    if _splitter is None:
        return None
    return {"by_workers": _splitter.parts_run_by_workers, "taken_back": _splitter.parts_taken_back}
