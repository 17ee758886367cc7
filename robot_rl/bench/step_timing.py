"""Time every control step's action: wall clock and the calling thread's CPU time, p50 / p99 / max in ms.

`robot-rl bc eval --bench` (a base alone) and `robot-rl eval --bench` (a run's full action: its base with chunk
execution plus the residual or steering actor, `Acting.choose`) both time with a `StepTimer`, on one torch thread.
Wall clock is what a control period sees, but on a shared machine its tail is set by the other processes' load;
the thread's CPU time (time.thread_time_ns, all of one torch thread's work) is what the step costs one core. The
load average printed with the figures says how loaded the machine was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np


class StepTimer:
    """Collects the wall and thread-CPU time of every call of the functions it wraps."""

    def __init__(self, label: str = "act()") -> None:
        self.label = label  # what is timed, for the report (the code that wraps may say it more precisely)
        self.wall_ns: list[int] = []  # per call: perf_counter_ns difference
        self.cpu_ns: list[int] = []  # per call: thread_time_ns difference (this thread's CPU)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, timed at every call."""

        def timed(*args, **kwargs):
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            out = fn(*args, **kwargs)
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            self.wall_ns.append(t1 - t0)
            self.cpu_ns.append(c1 - c0)
            return out

        return timed

    @property
    def steps(self) -> int:
        return len(self.wall_ns)

    def summary_ms(self) -> dict[str, float | int]:
        """`act_steps`, `act_ms_p50/p99/max` (wall), `act_cpu_ms_p50/p99/max` (thread CPU), `torch_threads` and the
        machine's `load_avg_1m/5m/15m` now. Percentiles interpolate linearly (numpy's default)."""
        if not self.wall_ns:
            raise ValueError("no step was timed: run at least one step")
        out: dict[str, float | int] = {"act_steps": self.steps}
        for name, ns in (("act_ms", self.wall_ns), ("act_cpu_ms", self.cpu_ns)):
            ms = np.asarray(ns, dtype=np.float64) / 1e6
            out.update(
                {
                    f"{name}_p50": float(np.percentile(ms, 50)),
                    f"{name}_p99": float(np.percentile(ms, 99)),
                    f"{name}_max": float(ms.max()),
                }
            )
        import torch

        out["torch_threads"] = torch.get_num_threads()
        out.update(zip(("load_avg_1m", "load_avg_5m", "load_avg_15m"), (round(x, 2) for x in os.getloadavg())))
        return out


def format_step_timing(m: dict[str, float | int], what: str) -> str:
    """Two lines for a person: wall and CPU p50/p99/max of `what` (e.g. "act()") and the load average."""
    threads = m["torch_threads"]
    return (
        f"{what} on {threads} torch thread{'s' if threads != 1 else ''} over {m['act_steps']} steps: "
        f"wall p50 {m['act_ms_p50']:.2f} ms, p99 {m['act_ms_p99']:.2f} ms, max {m['act_ms_max']:.2f} ms; "
        f"thread CPU p50 {m['act_cpu_ms_p50']:.2f} ms, p99 {m['act_cpu_ms_p99']:.2f} ms, "
        f"max {m['act_cpu_ms_max']:.2f} ms\n"
        f"load average {m['load_avg_1m']:.2f} / {m['load_avg_5m']:.2f} / {m['load_avg_15m']:.2f} (1 / 5 / 15 min) "
        f"on {os.cpu_count()} cores"
    )


class TimedBase:
    """A base policy (robot_rl.bc.base.BasePolicy) whose every act() is timed by `timer`, chunk execution included;
    its layout (`obs_spec`, `action_dim`) is the base's, so layout checks see through it."""

    def __init__(self, base, timer: StepTimer):
        self.base, self.timer = base, timer
        self.obs_spec, self.action_dim = getattr(base, "obs_spec", None), getattr(base, "action_dim", None)
        self.act = timer.wrap(base.act)

    def reset(self) -> None:
        self.base.reset()
