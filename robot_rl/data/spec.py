"""What an episode looks like: its length, and the dtype and per-step shape of every key.

Every episode in one store has the same key set, dtypes and per-step shapes. The stores
(`EpisodeStore` on zarr, `MemoryEpisodeStore` in RAM) use these helpers to refuse an episode
that does not fit, with a message that names the key and the expected vs. the given value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeySpec:
    """dtype and per-step shape (everything after the time axis) of one key."""

    dtype: np.dtype
    step_shape: tuple[int, ...]

    def describe(self) -> str:
        return f"{self.dtype} {self.step_shape}"


def episode_length(steps: Mapping[str, np.ndarray]) -> int:
    """The common length T of an episode's arrays (each (T, ...)); raises ValueError otherwise."""
    if not steps:
        raise ValueError("an episode needs at least one key; got an empty dict")
    lengths = {}
    for key, value in steps.items():
        if not isinstance(value, np.ndarray):
            raise ValueError(f"episode key {key!r} must be a numpy array of shape (T, ...); got {type(value).__name__}")
        if value.ndim == 0:
            raise ValueError(f"episode key {key!r} must have a time axis, shape (T, ...); got a scalar")
        lengths[key] = value.shape[0]
    if len(set(lengths.values())) != 1:
        raise ValueError(f"all episode keys must have the same length T along axis 0; got {lengths}")
    length = next(iter(lengths.values()))
    if length == 0:
        raise ValueError("an episode needs at least one step; got T = 0")
    return length


def spec_of(steps: Mapping[str, np.ndarray]) -> dict[str, KeySpec]:
    """The key spec of an episode (or of stored arrays), keys sorted."""
    return {key: KeySpec(np.dtype(steps[key].dtype), tuple(steps[key].shape[1:])) for key in sorted(steps)}


def check_fits(expected: Mapping[str, KeySpec], steps: Mapping[str, np.ndarray], where: str) -> None:
    """Raise ValueError naming the first difference between an episode and the store's spec."""
    missing = sorted(set(expected) - set(steps))
    extra = sorted(set(steps) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{where}: the episode's keys differ from the store's: missing {missing}, unexpected {extra} "
            f"(expected exactly {sorted(expected)})"
        )
    got = spec_of(steps)
    for key, want in expected.items():
        if got[key] != want:
            raise ValueError(
                f"{where}: key {key!r} expected dtype/shape per step {want.describe()}, got {got[key].describe()}"
            )
