"""The frozen trunk's acting pass, prepared once per trunk: onnxruntime, else TorchScript, else eager torch.

Acting runs the frozen ResNet-10 on one frame per camera, on one thread (the actor's `threads`), once per control
period; eager torch spends ~16 ms on two 128x128 frames on a 2-core AVX-512 host, most of a 15 ms inference goal.
Measured there (session 16; both frames as one batch of 2, one thread, the control thread on SCHED_FIFO, options
interleaved, 400 repeats, both cores loaded by a learning benchmark; ms p50 / p99):

  eager (BN folded, channels-last)                            16.5 / 22.2
  torch.jit trace + freeze + optimize_for_inference            14.4 / 19.1
  torch.compile (inductor, dynamic=False, freezing)            12.5 / 15.5   7-40 s to build, needs a C++ compiler
  torch.utils.mkldnn.to_mkldnn                                 15.4 / 20.3
  bf16 autocast (AVX512-BF16)                                   10.0 / 14.0   not exact: actions move by up to 0.10
  onnxruntime 1.32 (CPU provider, 1 thread)                    12.1 / 14.8   ~1 s to build

Every fp32 option moves a trained pixel policy's deterministic actions by at most 2.1e-5 (1534 real observations;
no discrete-gripper choice changed); bfloat16 moves them by up to 0.10, so acting stays fp32.

`prepare_trunk` builds the fastest exact runtime available (`ROBOT_RL_TRUNK_RUNTIME`: auto = onnxruntime when the
`onnx` extra is installed, else torchscript; or onnxruntime, torchscript, eager), checks it against the eager
module on a probe batch, and falls back to the eager module with one warning line when it fails to build or to
match. It is built where a policy is loaded (the actor's loader thread, `robot-rl eval`'s load, a BC base's load to act:
`robot_rl.bc.base.prepare_base_acting`), never in a tick. onnxruntime runs its session with the GIL released, so the
actor's other threads run meanwhile.

The feature caches run the same pass (`ObsEncoder.frozen_pass`), built once per trunk and shared with acting: the
learner's replay (`FrameFeatures`: 2 views of each new frame, 32 frames per call in an episode's ingest or a demo
preload, 2 per camera and env step in `robot-rl train`) and a BC trainer's demo cache (4 views, 64 per call). It is
faster than eager torch at each of those batch sizes, so the caches use it whenever it builds; a GPU runs eager torch.
Session 16, CPU ms per 128x128 frame, eager vs onnxruntime, interleaved, the learner's malloc settings
(robot_rl.cpu), load 5-6 on 2 cores; one thread (the learner, `bc train --threads 1`): batch 2: 8.9 vs 6.3, 4: 7.4
vs 5.9, 32: 5.8 vs 5.6, 64: 6.3 vs 5.5, 1024: 9.1 vs 5.7; two threads (`robot-rl train` with images): batch 2: 27
vs 10, 4: 28-33 vs 8.2-8.5 (eager torch's threads wait on a loaded CPU; onnxruntime's are told not to spin).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

RUNTIMES = ("auto", "onnxruntime", "torchscript", "eager")
RUNTIME_ENV = "ROBOT_RL_TRUNK_RUNTIME"
PROBE_TOLERANCE = 1e-4  # max |fast - eager| feature difference allowed, relative to (1 + max |eager|)
_log = logging.getLogger(__name__)

Runner = Callable[[torch.Tensor], torch.Tensor]  # uint8 (B, H, W, C) -> float32 (B, C', h, w)


class PreparedTrunk:
    """A frozen trunk's acting pass for frames of one (H, W, C) shape: `runtime` names what runs it; `calls` and
    `frames` count what it ran (acting and the feature caches alike)."""

    def __init__(self, run: Runner, runtime: str, image_shape: tuple[int, int, int], build_s: float) -> None:
        self.run, self.runtime, self.image_shape, self.build_s = run, runtime, image_shape, build_s
        self.calls = self.frames = 0

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) -> float32 (B, C', h, w)."""
        self.calls, self.frames = self.calls + 1, self.frames + len(frames)
        return self.run(frames)

    def __repr__(self) -> str:
        return f"PreparedTrunk({self.runtime}, {self.image_shape}, built in {self.build_s:.2f} s)"


def runtime_summary(prepared: dict[tuple, PreparedTrunk]) -> str:
    """What runs each camera shape's pass, one line: "128x128x3: onnxruntime" ("" for none)."""
    return ", ".join(f"{'x'.join(map(str, shape))}: {p.runtime}" for shape, p in prepared.items())


def chosen_runtime(runtime: str | None = None) -> str:
    """The runtime to build: `runtime`, else $ROBOT_RL_TRUNK_RUNTIME, else auto; auto resolved by what is installed."""
    runtime = runtime or os.environ.get(RUNTIME_ENV, "auto")
    if runtime not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV}={runtime!r}; choose one of {RUNTIMES}")
    if runtime == "auto":
        return "onnxruntime" if importlib.util.find_spec("onnxruntime") else "torchscript"
    return runtime


def prepare_trunk(
    trunk: nn.Module, image_shape: tuple[int, int, int], batch: int, runtime: str | None = None
) -> PreparedTrunk:
    """`trunk` (an eval-mode, frozen, BN-folded module on the CPU) prepared for batches of `batch` frames of
    `image_shape` (H, W, C); other batch sizes run too. Falls back to `trunk` itself with one warning line."""
    name = chosen_runtime(runtime)
    t0 = time.perf_counter()
    if name == "eager" or any(t.device.type != "cpu" for t in trunk.parameters()):  # GPUs run eager torch
        return PreparedTrunk(trunk, "eager", image_shape, 0.0)
    probe = torch.randint(0, 256, (batch, *image_shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' deprecation and tracer notes
            run = _BUILDERS[name](trunk, probe)
            want, got = trunk(probe), run(probe)
        error = float((got - want).abs().max())
        bound = PROBE_TOLERANCE * (1.0 + float(want.abs().max()))
        if got.shape != want.shape or not error <= bound:
            raise ValueError(f"its features differ from eager torch's by {error:.2e} (allowed {bound:.2e})")
    except Exception as e:  # noqa: BLE001 -- any failure to build or match: the eager module is always right
        _log.warning(
            "frozen trunk: the %s acting path is unavailable (%s: %s); acting with eager torch",
            name,
            type(e).__name__,
            str(e).splitlines()[0][:200] if str(e) else "",
        )
        return PreparedTrunk(trunk, "eager", image_shape, 0.0)
    return PreparedTrunk(run, name, image_shape, time.perf_counter() - t0)


def _onnxruntime(trunk: nn.Module, probe: torch.Tensor) -> Runner:
    """The trunk exported to ONNX in memory (TorchScript-based exporter, batch dim dynamic) and run by an
    onnxruntime CPU session on torch's thread count."""
    import onnxruntime as ort

    buffer = io.BytesIO()
    torch.onnx.export(
        trunk,
        (probe,),
        buffer,
        input_names=["frames"],
        output_names=["features"],
        dynamic_axes={"frames": {0: "batch"}, "features": {0: "batch"}},
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on shared cores
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def run(frames: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"frames": frames.contiguous().numpy()})[0])

    return run


def _torchscript(trunk: nn.Module, probe: torch.Tensor) -> Runner:
    """The trunk traced, frozen and optimised for inference (oneDNN convolutions with prepacked weights)."""
    traced = torch.jit.freeze(torch.jit.trace(trunk, probe, check_trace=False).eval())
    return torch.jit.optimize_for_inference(traced)


_BUILDERS: dict[str, Callable[[nn.Module, torch.Tensor], Runner]] = {
    "onnxruntime": _onnxruntime,
    "torchscript": _torchscript,
}
