"""Stored episodes as a Rerun recording (`robot-rl data view STORE --rerun`), in the layout of
`robot_rl.viz.rerun_log`, each key of an episode sent as whole columns (one call per entity, not per step).

The `step` timeline is the store's row (`episode_slice(i).start + t`), so the episodes lie back to back in the
order of the store and a row read with `robot-rl data info` is found at the same step in the viewer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.layout import is_image
from robot_rl.data.store import EpisodeStore
from robot_rl.data.view import camera_keys
from robot_rl.viz.rerun_log import TIMELINE, RerunLog, action_path, camera_path, jpeg, signal_path

# store key -> signal name; other per-step scalars of a store appear under signals/<key>
SIGNAL_KEYS = {keys.REWARD: "reward", keys.IS_INTERVENTION: "intervention", keys.SUCCESS: "success"}
_NOT_SIGNALS = (keys.TERMINATED, keys.TRUNCATED)  # shown as episode boundaries (events, episode/index) instead


@dataclass(frozen=True)
class ViewResult:
    episodes: tuple[int, ...]  # the store's episode indices logged
    steps: int  # rows logged
    cameras: tuple[str, ...]
    out: Path | None  # the .rrd written (None when only streamed to a viewer)


def parse_episodes(spec: str | None, n_episodes: int) -> list[int]:
    """`0,3,5-9` (ranges inclusive; negative indices count from the end) -> sorted unique indices; None: all."""
    if spec is None:
        return list(range(n_episodes))
    picked: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        first, sep, last = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            bounds = [int(first)] if not sep else [int(first), int(last)]
        except ValueError:
            raise ValueError(f"episodes {spec!r}: {part!r} is not an index or a range a-b (e.g. 0,3,5-9)") from None
        for b in bounds:
            if not -n_episodes <= b < n_episodes:
                raise ValueError(f"episodes {spec!r}: {b} is out of range; the store has {n_episodes} episodes")
        lo, hi = (b % n_episodes for b in (bounds[0], bounds[-1]))
        if hi < lo:
            raise ValueError(f"episodes {spec!r}: the range {part} runs backwards")
        picked.update(range(lo, hi + 1))
    return sorted(picked)


def _scalar_keys(episode: Mapping[str, np.ndarray]) -> list[str]:
    """Per-step scalar keys shown as signals: the known ones first, then any other (not clocks, not end flags)."""
    length = len(episode[keys.ACTION])
    others = sorted(
        k
        for k, v in episode.items()
        if k not in SIGNAL_KEYS
        and k not in _NOT_SIGNALS
        and not k.startswith(keys.T_CAPTURE)
        and v.shape[:1] == (length,)
        and v.size == length
        and v.dtype.kind in "biuf"
    )
    return [k for k in SIGNAL_KEYS if k in episode] + others


def log_episode(log: RerunLog, episode: Mapping[str, np.ndarray], first_step: int, index: int) -> int:
    """Send one stored episode (key -> (T, ...) arrays) starting at row `first_step`; returns T."""
    rr, rec = log.rr, log.rec
    action = np.asarray(episode[keys.ACTION]).reshape(len(episode[keys.ACTION]), -1)  # (T, A)
    length = len(action)
    steps = np.arange(first_step, first_step + length, dtype=np.int64)
    when = [rr.TimeColumn(TIMELINE, sequence=steps)]
    for cam in camera_keys(episode):
        blobs = [jpeg(image) for image in episode[cam]]
        rec.send_columns(
            camera_path(keys.camera_of(cam)),
            indexes=when,
            columns=rr.EncodedImage.columns(blob=blobs, media_type=["image/jpeg"] * length),
        )
    names = log.names_for(action.shape[1])
    for series, key in (("executed", keys.ACTION), ("policy", keys.POLICY_ACTION), ("base", keys.BASE_ACTION)):
        values = episode.get(key)
        if values is None or (series == "base" and not np.any(values)):
            continue  # no base policy: no base series
        values = np.asarray(values, np.float64).reshape(length, -1)
        for dim, name in enumerate(names):
            rec.send_columns(
                action_path(name, series), indexes=when, columns=rr.Scalars.columns(scalars=values[:, dim])
            )
    for key in _scalar_keys(episode):
        values = np.asarray(episode[key], np.float64).reshape(length)
        rec.send_columns(
            signal_path(SIGNAL_KEYS.get(key, key)), indexes=when, columns=rr.Scalars.columns(scalars=values)
        )
    rec.send_columns("episode/index", indexes=when, columns=rr.Scalars.columns(scalars=np.full(length, float(index))))
    log.episode_start(first_step, index)
    success = bool(np.any(episode[keys.SUCCESS])) if keys.SUCCESS in episode else None
    reward = float(np.sum(episode[keys.REWARD])) if keys.REWARD in episode else 0.0
    log.episode_end(first_step + length - 1, index, length, reward, success)
    return length


def view_store(
    store_path: str | os.PathLike,
    episodes: Sequence[int] | None = None,
    save: str | os.PathLike | None = None,
    connect: str | None = None,
) -> ViewResult:
    """Log the store's `episodes` (all when None) to an .rrd at `save` and/or a viewer at `connect`."""
    store = EpisodeStore.open(store_path, mode="r")
    picked = list(range(store.n_episodes)) if episodes is None else list(episodes)
    cameras = tuple(keys.camera_of(k) for k, spec in store.spec.items() if is_image(k, spec))
    name = f"{Path(store_path).resolve().name}: episodes {picked[0]}-{picked[-1]}" if picked else "empty"
    log = RerunLog.open(save, connect, list(store.meta.get("action_layout") or []), cameras, name=name)
    steps = 0
    try:
        for index in picked:
            steps += log_episode(log, store.get_episode(index), int(store.episode_slice(index).start), index)
    finally:
        log.close()
    return ViewResult(tuple(picked), steps, cameras, None if save is None else Path(save))
