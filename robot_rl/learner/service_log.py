"""The ROS learner service's log line and wandb metrics, per window since the last line."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from robot_rl.learner.core import Learner
from robot_rl.learner.wandb_log import WandbLog


@dataclass
class LogWindow:
    """Counters for log lines and wandb, since the last log line."""

    t0: float = field(default_factory=time.perf_counter)
    episodes: int = 0  # stored
    updates: int = 0
    ingest_s0: float = 0.0  # the ingest timer's seconds when the window opened
    ingest_cpu_s0: float = 0.0  # and its CPU seconds


def log_line(
    learner: Learner, s: LogWindow, refused: Counter[str], log: Callable[[str], None], wandb: WandbLog
) -> LogWindow:
    """Log one status line and the window's metrics to wandb; returns the next window."""
    dt = max(time.perf_counter() - s.t0, 1e-9)
    ingest_ms = 1000 * (learner.timers.seconds["ingest"] - s.ingest_s0) / max(s.episodes, 1)
    ingest_cpu_ms = 1000 * (learner.timers.cpu_seconds["ingest"] - s.ingest_cpu_s0) / max(s.episodes, 1)
    rate, interventions = learner.success_rate_recent() or 0.0, learner.intervention_rate_recent() or 0.0
    numbers = " ".join(f"{k} {v:.3g}" for k, v in sorted(learner.metrics.items()))
    log(
        f"ep {learner.episodes} | env steps {learner.env_steps} | updates {learner.agent.step} | success "
        f"{rate:.0%} (last {len(learner.recent_success)}) | interventions {interventions:.0%} | "
        f"{s.episodes / dt:.2f} ep/s | {s.updates / dt:.1f} upd/s | ingest {ingest_ms:.0f} ms/ep ({ingest_cpu_ms:.0f} ms CPU) | "
        f"{numbers}" + (f" | refused {dict(sorted(refused.items()))}" if refused else "")
    )
    wandb.log(
        {
            **{f"train/{k}": v for k, v in learner.metrics.items()},
            "train/success_rate_recent": rate,
            "train/intervention_rate_recent": interventions,
            "train/updates": learner.agent.step,
            "train/episodes": learner.episodes,
            "perf/updates_per_s": s.updates / dt,
            "perf/episodes_per_s": s.episodes / dt,
            "perf/ingest_ms": ingest_ms,
            "perf/ingest_cpu_ms": ingest_cpu_ms,
            **learner.timers.metrics(),
            **{f"refused/{k}": v for k, v in refused.items()},
        },
        learner.env_steps,
    )
    return LogWindow(ingest_s0=learner.timers.seconds["ingest"], ingest_cpu_s0=learner.timers.cpu_seconds["ingest"])
