"""The actor's per-episode timing record: tick periods, inference, tick-to-command and observation-to-command times.

Per running tick the wall time it started (NaN for a paused one: a pause is no control period), the policy's
inference time, the wall time from the tick's start to its command, and the observation->command latency
(command stamp minus the capture stamp of the oldest input used, node clock). `summary` is the episode log
line's tail; with a timing log file, `write_episode` appends one JSON line per episode and `write_policy`
one per policy load (`robot-rl bench ros` reads them: robot_rl.bench.ros.read_timing_log).
"""

from __future__ import annotations

import json
import time

import numpy as np


class TickTiming:
    """The running episode's timings, and the optional JSON-lines log they are appended to."""

    def __init__(self, nominal_period_s: float, log_path: str = "") -> None:
        self.nominal_period_s = nominal_period_s
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115 (node lifetime)
        self.reset()

    def reset(self) -> None:
        """At an episode's start: forget the previous one's timings."""
        self.tick_wall_s: list[float] = []  # monotonic start of each running tick (NaN: paused)
        self.infer_s: list[float] = []  # policy inference times
        self.act_s: list[float] = []  # per step: wall time from the tick's start to its command being published
        self.latency_s: list[float] = []  # per step: command stamp - capture stamp of the oldest input (node clock)

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
                "latency_ms": ms(self.latency_s),
                "wall_time": time.time(),
            }
        )

    def write_policy(self, version: int) -> None:
        """Append that policy `version` was put in use now (wall time)."""
        self._write({"event": "policy", "version": version, "wall_time": time.time()})

    def _write(self, record: dict) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
