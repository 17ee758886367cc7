"""The training-episode log `<run>/train_episodes.jsonl`: one line per episode the learner took in, one schema for
`robot-rl train` and the learner node, and its curve `train_curve.png`.

Each line (`episode_record`):

    episode            position of the episode in the run's episode store (0, 1, 2, ...)
    actor_id, index    who sent it and its index there (in-process: "local" and the position)
    policy_version     learner update step of the weights that acted (-1: warm-up, scripted, or not known)
    env_steps          online env steps the learner holds after this episode
    steps, return      the episode's length and its sum of stored (raw) rewards
    success            any step's success flag (without one: the last step terminated)
    interventions      steps a person (or the scripted operator) drove, and intervention_rate = interventions / steps
    updates, wall_s    the learner's update step and wall seconds (summed over restarts) when it arrived;
                       null for a line rebuilt from the store after a crash lost it

A (re)started learner keeps the lines of the episodes its store holds and rebuilds any the crash lost
(`sync_with_store`), so the log always has exactly one line per stored episode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.learner.corrections import episode_succeeded

TRAIN_LOG = "train_episodes.jsonl"
TRAIN_CURVE_PNG = "train_curve.png"
LOCAL_ACTOR = "local"  # actor_id of the episodes the in-process loop (`robot-rl train`) records


def episode_record(
    episode: dict[str, np.ndarray],
    position: int,
    env_steps: int,
    meta: dict | None = None,
    updates: int | None = None,
    wall_s: float | None = None,
) -> dict[str, Any]:
    """One line of the log for an episode's arrays; `meta` {actor_id, index, policy_version} of its sender."""
    meta = meta or {}
    flags = np.asarray(episode[keys.IS_INTERVENTION], dtype=bool) if keys.IS_INTERVENTION in episode else None
    n = int(len(episode[keys.ACTION]))
    interventions = int(flags.sum()) if flags is not None else 0
    success = episode_succeeded(episode)
    return {
        "episode": position,
        "actor_id": meta.get("actor_id", LOCAL_ACTOR),
        "index": meta.get("index", position),
        "policy_version": meta.get("policy_version", -1),
        "env_steps": env_steps,
        "steps": n,
        "return": round(float(np.sum(episode[keys.REWARD], dtype=np.float64)), 6),
        "success": success,
        "interventions": interventions,
        "intervention_rate": round(interventions / n if n else 0.0, 6),
        "updates": updates,
        "wall_s": None if wall_s is None else round(wall_s, 3),
    }


def append(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one line, flushed before returning."""
    with open(Path(run_dir) / TRAIN_LOG, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def write(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """Replace the log with `records` (atomically: a temporary file renamed over it)."""
    path = Path(run_dir) / TRAIN_LOG
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    tmp.replace(path)


def read(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of the log that holds a JSON object (a line torn by a crash, or damaged, is skipped), in
    episode order."""
    path = Path(run_dir) / TRAIN_LOG
    out = []
    text = path.read_bytes().decode("utf-8", errors="replace") if path.is_file() else ""
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _usable(record: dict[str, Any], position: int) -> bool:
    """The line of the episode at `position`, with the fields a resumed learner reads (success, intervention rate)."""
    rate = record.get("intervention_rate", 0.0)
    return (
        record.get("episode") == position
        and isinstance(record.get("success"), bool)
        and isinstance(rate, (int, float))
        and not isinstance(rate, bool)
        and 0.0 <= rate <= 1.0
    )


def sync_with_store(run_dir: Path, store) -> list[dict[str, Any]]:
    """Keep the lines of the episodes `store` holds, rebuild lost ones from it (updates and wall_s unknown),
    rewrite the log with them; return them. Lines from the first one that is not its episode's usable line on (a
    damaged or hand-edited log) are rebuilt from the store too."""
    records = read(run_dir)[: store.n_episodes if store is not None else 0]
    usable = next((i for i, r in enumerate(records) if not _usable(r, i)), len(records))
    records = records[:usable]
    if store is not None and len(records) < store.n_episodes:
        from robot_rl.learner.ledger import SOURCE_KEYS, source_of

        env_steps = int(store.episode_lengths[: len(records)].sum())
        for position, episode in enumerate(store.iter_episodes(start=len(records)), start=len(records)):
            env_steps += len(episode[keys.ACTION])
            meta = None
            if all(k in episode for k in SOURCE_KEYS):
                actor_id, index = source_of(episode)
                meta = {"actor_id": actor_id, "index": index, "policy_version": int(episode[SOURCE_KEYS[2]][0])}
            records.append(episode_record(episode, position, env_steps, meta))
    if records or (Path(run_dir) / TRAIN_LOG).exists():
        write(run_dir, records)
    return records


def rolling(records: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """Per episode: success rate, mean and std of the return over the last `window` episodes (curves format)."""
    out, with_interventions = [], any(x.get("intervention_rate", 0.0) for x in records)
    for i, r in enumerate(records):
        recent = records[max(0, i + 1 - window) : i + 1]
        returns = np.array([x["return"] for x in recent], dtype=np.float64)
        out.append(
            {
                "env_steps": r["env_steps"],
                "success_rate": float(np.mean([x["success"] for x in recent])),
                "return_mean": float(returns.mean()),
                "return_std": float(returns.std()),
            }
        )
        if with_interventions:
            out[-1]["intervention_rate_recent"] = float(np.mean([x.get("intervention_rate", 0.0) for x in recent]))
    return out


def plot(run_dir: Path, records: list[dict[str, Any]], window: int, title: str) -> Path:
    """Redraw `<run_dir>/train_curve.png` from the records; returns its path."""
    from robot_rl.training import curves

    png = Path(run_dir) / TRAIN_CURVE_PNG
    curves.plot_curve(
        rolling(records, window),
        png,
        f"{title}: training episodes",
        success_label=f"success rate (stochastic policy, last {window} episodes)",
    )
    return png
