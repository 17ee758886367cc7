"""The actor's per-episode timing record: tick periods, inference, tick-to-command and observation-to-command times.

Per running tick the wall time it started (NaN for a paused one: a pause is no control period), the policy's
inference time, the wall time from the tick's start to its command, and the observation->command latency
(command stamp minus the capture stamp of the oldest input used, node clock), and how that tick-to-command
wall time splits for the control thread (Linux schedstat): CPU it ran, time it sat runnable on the run queue
(preempted by other threads: what SCHED_FIFO removes, robot_rl.acting.realtime), and the rest -- blocked, mostly
waiting for the GIL another Python thread of the actor holds. `summary` is the episode log
line's tail; with a timing log file, `write_episode` appends one JSON line per episode and `write_policy`
one per policy load (`robot-rl bench ros` reads them: robot_rl.bench.ros.read_timing_log).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

_SCHEDSTAT = Path("/proc/thread-self/schedstat")  # "<cpu ns> <run-queue wait ns> <timeslices>" of the calling thread


def thread_schedstat_s() -> tuple[float, float]:
    """(CPU seconds run, seconds waited runnable on a run queue) of the calling thread so far; the wait is nan off
    Linux. The CPU time comes from the thread's CPU clock: schedstat's own lags by up to a scheduler tick for a
    running thread, while its run-queue wait is complete whenever the thread itself reads it (it is running)."""
    try:
        wait_ns = int(_SCHEDSTAT.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return time.thread_time(), float("nan")
    return time.thread_time(), wait_ns * 1e-9


class TickTiming:
    """The running episode's timings, and the optional JSON-lines log they are appended to."""

    def __init__(self, nominal_period_s: float, log_path: str = "") -> None:
        self.nominal_period_s = nominal_period_s
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115 (node lifetime)
        self._tick_sched_s = (float("nan"), float("nan"))  # thread_schedstat_s() at the running tick's start
        self.reset()

    def reset(self) -> None:
        """At an episode's start: forget the previous one's timings."""
        self.tick_wall_s: list[float] = []  # monotonic start of each running tick (NaN: paused)
        self.infer_s: list[float] = []  # policy inference times
        self.act_s: list[float] = []  # per step: wall time from the tick's start to its command being published
        self.latency_s: list[float] = []  # per step: command stamp - capture stamp of the oldest input (node clock)
        self.act_cpu_s: list[float] = []  # per step: the control thread's CPU time from the tick's start to command
        self.act_runq_s: list[float] = []  # per step: of that wall time, runnable but not running (preempted)

    def tick_started(self) -> None:
        """At a tick's start, on the control thread: its CPU and run-queue counters, for `command_sent`."""
        self._tick_sched_s = thread_schedstat_s()

    def command_sent(self, act_s: float) -> None:
        """On the control thread once the step's command is out, `act_s` wall seconds after the tick's start."""
        cpu_s, runq_s = thread_schedstat_s()
        self.act_s.append(act_s)
        self.act_cpu_s.append(cpu_s - self._tick_sched_s[0])
        self.act_runq_s.append(runq_s - self._tick_sched_s[1])

    def periods(self) -> tuple[np.ndarray, np.ndarray]:
        """(wall periods in ms between consecutive running ticks, monotonic time each ends); pauses left out."""
        t = np.asarray(self.tick_wall_s)
        period_ms = np.diff(t) * 1e3
        ok = np.isfinite(period_ms)
        return period_ms[ok], t[1:][ok]

    def summary(self) -> str:
        """Period p50/p99, jitter p99 and inference p50/p99 of the episode, for its log line."""
        period_ms, infer_ms = self.periods()[0], np.asarray(self.infer_s) * 1e3
        text = ""
        if len(period_ms) > 2:
            jitter_ms = np.abs(period_ms - self.nominal_period_s * 1e3)
            text = (
                f"tick period wall p50 {np.median(period_ms):.1f} ms, p99 {np.percentile(period_ms, 99):.1f} ms, "
                f"jitter p99 {np.percentile(jitter_ms, 99):.1f} ms"
            )
        if len(infer_ms):
            text += f"; inference p50 {np.median(infer_ms):.1f} ms, p99 {np.percentile(infer_ms, 99):.1f} ms"
        return text

    def write_episode(self, episode: int | None, policy_version: int) -> None:
        """Append the episode's raw timings to the log (episode None: the unfinished one, at exit)."""
        if self._log is None or not self.tick_wall_s:
            return
        from robot_rl.nets.frame_split import split_counts  # torch: only where a timing log is written

        ms = lambda xs: [round(float(x) * 1e3, 3) for x in xs]  # noqa: E731
        period_ms, end_s = self.periods()
        to_wall = time.time() - time.monotonic()
        self._write(
            {
                "event": "episode",
                "episode": episode,
                "steps": len(self.latency_s),
                "policy_version": policy_version,
                "nominal_period_ms": self.nominal_period_s * 1e3,
                "period_ms": [round(float(x), 3) for x in period_ms],
                "period_end_wall": [round(float(t + to_wall), 4) for t in end_s],
                "infer_ms": ms(self.infer_s),
                "act_ms": ms(self.act_s),
                "act_cpu_ms": ms(self.act_cpu_s),
                "act_runq_ms": ms(self.act_runq_s),
                "latency_ms": ms(self.latency_s),
                "frame_parts": split_counts(),  # so far in this process (robot_rl.nets.frame_split)
                "wall_time": time.time(),
            }
        )

    def write_policy(self, version: int) -> None:
        """Append that policy `version` was put in use now (wall time)."""
        self._write({"event": "policy", "version": version, "wall_time": time.time()})

    def _write(self, record: dict) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
