"""What is in an episode store, as a JSON-able dict and as text (`robot-rl data info`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.data.store import EpisodeStore


def _per_episode_any(store: EpisodeStore, key: str) -> np.ndarray:
    """(n_episodes,) bool: whether `key` was true at any step of each episode."""
    values = store.get_key(key).astype(bool)
    starts = np.concatenate([[0], store.episode_ends[:-1]])
    return np.logical_or.reduceat(values, starts)


def summarize(store: EpisodeStore) -> dict[str, Any]:
    """Counts, rates, per-key layout and size on disk of a store."""
    meta = store.meta
    lengths = store.episode_lengths
    per_key = {}
    for key, spec in store.spec.items():
        raw = store.n_steps * math.prod(spec.step_shape) * spec.dtype.itemsize
        stored = store.nbytes_stored(key)
        per_key[key] = {
            "step_shape": list(spec.step_shape),
            "dtype": str(spec.dtype),
            "stored_bytes": stored,
            "raw_bytes": raw,
            "compression_ratio": round(raw / stored, 2) if stored else None,
        }
    has_episodes = store.n_episodes > 0
    success = _per_episode_any(store, keys.SUCCESS) if has_episodes and keys.SUCCESS in store.spec else None
    interventions = store.get_key(keys.IS_INTERVENTION) if has_episodes and keys.IS_INTERVENTION in store.spec else None
    image_keys = [k for k in store.spec if keys.is_image_key(k)]
    return {
        "path": str(Path(store.path).resolve()),
        "schema_version": meta.get("schema_version"),
        "task": meta.get("task"),
        "obs_mode": meta.get("obs_mode"),
        "control_rate_hz": meta.get("control_rate_hz"),
        "created_utc": meta.get("created_utc"),
        "robot_rl_version": meta.get("robot_rl_version"),
        "episodes": store.n_episodes,
        "steps": store.n_steps,
        "episode_length": {
            "min": int(lengths.min()),
            "mean": round(float(lengths.mean()), 2),
            "max": int(lengths.max()),
        }
        if has_episodes
        else None,
        "success_rate": round(float(success.mean()), 4) if success is not None else None,
        "successful_episodes": int(success.sum()) if success is not None else None,
        "intervention_rate": round(float(interventions.mean()), 4) if interventions is not None else None,
        "cameras": {
            keys.camera_of(k): meta.get("cameras", {}).get(keys.camera_of(k), {})
            | {"image_shape": per_key[k]["step_shape"]}
            for k in image_keys
        },
        "keys": per_key,
        "stored_bytes": sum(v["stored_bytes"] for v in per_key.values()),
    }


def _size(n_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable text of `summarize`'s dict."""
    lines = [
        f"store            {s['path']}",
        f"schema_version   {s['schema_version']}  (robot_rl {s['robot_rl_version']}, created {s['created_utc']})",
        f"task             {s['task']}  obs_mode={s['obs_mode']}  control_rate_hz={s['control_rate_hz']}",
        f"episodes         {s['episodes']}   steps {s['steps']}   on disk {_size(s['stored_bytes'])}",
    ]
    if s["episode_length"]:
        el = s["episode_length"]
        lines.append(f"episode length   min {el['min']}  mean {el['mean']}  max {el['max']}")
    successes = "" if s["successful_episodes"] is None else f" ({s['successful_episodes']}/{s['episodes']} episodes)"
    lines.append(f"success rate     {_rate(s['success_rate'])}{successes}")
    lines.append(f"intervention     {_rate(s['intervention_rate'])} of steps")
    for cam, info in s["cameras"].items():
        shape = "x".join(str(d) for d in info["image_shape"])
        intrinsics = f"  K={[round(v, 2) for v in info['K']]}" if "K" in info else ""
        lines.append(f"camera           {cam}: {shape}{intrinsics}")
    lines.append(f"{'key':<22} {'per step':<16} {'dtype':<8} {'on disk':>10} {'ratio':>7}")
    for key, k in s["keys"].items():
        shape = "(" + ", ".join(str(d) for d in k["step_shape"]) + ")"
        ratio = "-" if k["compression_ratio"] is None else f"{k['compression_ratio']:.1f}x"
        lines.append(f"{key:<22} {shape:<16} {k['dtype']:<8} {_size(k['stored_bytes']):>10} {ratio:>7}")
    return "\n".join(lines)
