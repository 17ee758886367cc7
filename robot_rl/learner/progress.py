"""The learner's training log: `<out>/train_episodes.jsonl` (one line per ingested episode) and its curve.

Each line: actor_id, index, success, return, steps, policy_version, env_steps (total after this episode),
updates (the learner's update step when it arrived), wall_s (learner seconds, summed over restarts),
intervention_rate (fraction of its steps a person drove).
`train_curve.png` plots the rolling success rate and return over the last `window` episodes against env
steps (and the rolling intervention rate once any episode had one), in the style of the in-process trainer's eval curve (`robot_rl.training.curves.plot_curve`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.training import curves

TRAIN_LOG = "train_episodes.jsonl"
TRAIN_CURVE_PNG = "train_curve.png"


@dataclass(frozen=True)
class EpisodeRecord:
    """One line of train_episodes.jsonl."""

    actor_id: str  # the sending actor
    index: int  # the actor's episode index
    success: bool  # the episode reached the task's success (any step's success flag)
    episode_return: float  # sum of rewards
    steps: int  # env steps of the episode
    policy_version: int  # update step of the weights that acted (-1: warm-up / scripted)
    env_steps: int  # online env steps the learner holds after this episode
    updates: int  # learner update step when the episode was ingested
    wall_s: float  # learner wall seconds when it was ingested, summed over restarts
    intervention_rate: float = 0.0  # fraction of the episode's steps a person (or the scripted operator) drove

    def to_json(self) -> str:
        d = asdict(self)
        d["return"] = d.pop("episode_return")
        return json.dumps(d, sort_keys=True)


def summarize(episode: dict[str, np.ndarray]) -> tuple[bool, float, int]:
    """(success, return, steps) of an episode's arrays."""
    success = bool(np.any(episode[keys.SUCCESS])) if keys.SUCCESS in episode else bool(episode[keys.TERMINATED][-1])
    return success, float(np.sum(episode[keys.REWARD], dtype=np.float64)), int(len(episode[keys.ACTION]))


def append_record(run_dir: Path, record: EpisodeRecord) -> None:
    with open(Path(run_dir) / TRAIN_LOG, "a") as f:
        f.write(record.to_json() + "\n")


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of train_episodes.jsonl (a torn last line from a crash is skipped)."""
    path = Path(run_dir) / TRAIN_LOG
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def keep_first(run_dir: Path, n: int) -> list[dict[str, Any]]:
    """Rewrite the log with its first `n` complete lines (the episodes the store holds); return them."""
    records = read_records(run_dir)[:n]
    path = Path(run_dir) / TRAIN_LOG
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    tmp.replace(path)
    return records


def rolling(records: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """Per episode: success rate, mean and std of the return over the last `window` episodes (curves format)."""
    out, with_interventions = [], any(x.get("intervention_rate", 0.0) for x in records)
    for i, r in enumerate(records):
        recent = records[max(0, i + 1 - window): i + 1]
        returns = np.array([x["return"] for x in recent], dtype=np.float64)
        out.append({"env_steps": r["env_steps"], "success_rate": float(np.mean([x["success"] for x in recent])),
                    "return_mean": float(returns.mean()), "return_std": float(returns.std())})
        if with_interventions:
            out[-1]["intervention_rate_recent"] = float(np.mean([x.get("intervention_rate", 0.0) for x in recent]))
    return out


def plot(run_dir: Path, records: list[dict[str, Any]], window: int, title: str) -> Path:
    """Redraw `<run_dir>/train_curve.png` from the records; returns its path."""
    png = Path(run_dir) / TRAIN_CURVE_PNG
    curves.plot_curve(rolling(records, window), png, f"{title}: training episodes",
                      success_label=f"success rate (stochastic policy, last {window} episodes)")
    return png
