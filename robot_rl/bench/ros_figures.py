"""`robot-rl bench ros`'s control-phase figures from the actor's timing log, the weights' publish and load times and
the /clock messages the bench process heard (robot_rl.bench.ros runs the phases)."""

from __future__ import annotations

import numpy as np

from robot_rl.bench.ros_results import BROADCAST_WINDOW_S, Stat


def sim_jitter_ms(
    clock: list[tuple[float, float]], period_s: float, skip: list[tuple[float, float]] = ()
) -> np.ndarray:
    """|wall time between the clock messages that cross consecutive multiples of period_s (sim time) - period|, ms;
    periods ending inside a `skip` (wall start, wall end) window are left out."""
    if len(clock) < 2:
        return np.zeros(0)
    wall, sim = np.asarray(clock).T
    ticks = np.floor(sim / period_s + 1e-6)
    crossing = np.flatnonzero(np.diff(ticks) == 1) + 1  # first message of each new period
    keep = np.diff(ticks[crossing]) == 1  # consecutive periods only (a reset may jump sim time)
    keep &= ~_within(wall[crossing][1:], skip)
    return np.abs(np.diff(wall[crossing])[keep] - period_s) * 1e3


def _within(t: np.ndarray, windows) -> np.ndarray:
    """Which times fall inside any (start, end) window."""
    return np.array([any(a <= x <= b for a, b in windows) for x in t], dtype=bool).reshape(len(t))


def control_figures(
    episodes: list[dict],
    loads: dict[int, float],
    published: dict[int, float],
    clock: list[tuple[float, float]],
    phase: tuple[float, float] | None = None,
) -> dict:
    """The control phase's RosBenchResult fields from the actor's timing log, the weights' publish and load times
    and the /clock messages this process heard. Periods count when they end within `phase` (wall start, end): the
    actor's first episode starts before it, while the nodes start and the full policy (22 MB with the frozen
    trunk) arrives, which the phase leaves out by design (a learner sends it once per actor)."""

    def cat(key: str) -> np.ndarray:  # an older actor's log lacks the schedstat keys
        return np.concatenate([np.asarray(r.get(key, []), dtype=np.float64) for r in episodes] or [np.zeros(0)])

    act, act_cpu, act_runq = cat("act_ms"), cat("act_cpu_ms"), cat("act_runq_ms")
    nominal_ms = float(episodes[0]["nominal_period_ms"])
    period, period_end = cat("period_ms"), cat("period_end_wall")
    outside = 0
    if phase is not None and len(period_end) == len(period):
        inside = (period_end >= phase[0]) & (period_end <= phase[1])
        period, period_end, outside = period[inside], period_end[inside], int((~inside).sum())
    windows = [(t, loads.get(v, t) + BROADCAST_WINDOW_S) for v, t in published.items()]
    quiet = ~_within(period_end, windows)
    return {
        "jitter_ms": Stat.of(np.abs(period - nominal_ms)),
        "quiet_jitter_ms": Stat.of(np.abs(period[quiet] - nominal_ms)),
        "sim_jitter_ms": Stat.of(sim_jitter_ms(clock, nominal_ms / 1e3, windows)),
        "period_ms": Stat.of(period),
        "periods_outside_phase": outside,  # the actor's periods ending before or after the phase (not in period_ms)
        "latency_ms": Stat.of(cat("latency_ms")),
        "act_ms": Stat.of(act),
        "act_runq_ms": Stat.of(act_runq),
        "act_blocked_ms": Stat.of(act - act_cpu - act_runq if len(act_cpu) == len(act) else []),
        "infer_ms": Stat.of(cat("infer_ms")),
        "actor_episodes": sum(r["episode"] is not None for r in episodes),
        "nominal_period_ms": nominal_ms,
    }
