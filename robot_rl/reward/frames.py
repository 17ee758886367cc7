"""Labelled frames of one or more episode stores, in memory, with an episode-wise train / held-out split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.reward.labels import StoreLabels


@dataclass
class Frames:
    images: dict[str, np.ndarray]  # image_<cam> -> uint8 (N, H, W, 3)
    labels: np.ndarray  # uint8 (N,) frame success labels
    episode: np.ndarray  # int64 (N,) episode id, unique across stores
    episode_names: list[str]  # episode id -> "store#index"

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> Frames:
        return Frames(
            {k: v[rows] for k, v in self.images.items()}, self.labels[rows], self.episode[rows], self.episode_names
        )


def load_frames(stores: list[str | Path], cameras: tuple[str, ...], source: str | None = None) -> Frames:
    """Every frame of every store with its label (edits from each store's sidecar applied)."""
    images: dict[str, list[np.ndarray]] = {keys.image_key(c): [] for c in cameras}
    labels, episode, names = [], [], []
    for path in stores:
        store = EpisodeStore.open(path)
        missing = [k for k in images if k not in store.spec]
        if missing:
            have = [keys.camera_of(k) for k in store.keys if keys.is_image_key(k)]
            raise ValueError(
                f"{path} has no images of {[keys.camera_of(k) for k in missing]}; its cameras are {have} "
                "(record with --obs pixels, or choose --cameras from those)"
            )
        lab = StoreLabels(store, source)
        for key in images:
            images[key].append(store.get_key(key))
        labels.append(lab.all())
        first = len(names)
        episode.append(np.repeat(np.arange(first, first + store.n_episodes), store.episode_lengths))
        names += [f"{path}#{i}" for i in range(store.n_episodes)]
    return Frames(
        {k: np.concatenate(v) for k, v in images.items()},
        np.concatenate(labels).astype(np.uint8),
        np.concatenate(episode).astype(np.int64),
        names,
    )


def split_episodes(frames: Frames, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows), whole episodes each; episodes with and without positives split separately
    so both sides get some of each (at least one held-out episode of each kind when there are two or more)."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1); got {held_out_fraction}")
    rng = np.random.default_rng(seed)
    ids = np.unique(frames.episode)
    has_pos = np.array([frames.labels[frames.episode == i].any() for i in ids])
    held: list[int] = []
    for group in (ids[has_pos], ids[~has_pos]):
        if len(group) >= 2:
            n = max(1, int(round(held_out_fraction * len(group))))
            held += list(rng.choice(group, n, replace=False))
    if not held:
        raise ValueError(
            f"need at least 2 episodes with and 2 without positives to hold some out; got "
            f"{int(has_pos.sum())} and {int((~has_pos).sum())}"
        )
    held_mask = np.isin(frames.episode, held)
    return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)
