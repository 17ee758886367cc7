"""`MemoryEpisodeStore`: the `EpisodeStore` API over plain numpy arrays in RAM, for tests and tools.

Same conventions (row t: obs_t, action_t, the reward/terminated/truncated that followed) and the same
checks on `add_episode`; nothing touches the disk, nothing is durable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from robot_rl.data.spec import KeySpec, check_fits, episode_length, spec_of


class MemoryEpisodeStore:
    """Episodes held as one concatenated numpy array per key plus cumulative episode ends."""

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        self.path = None
        self.mode = "a"
        self._meta = dict(meta or {})
        self._spec: dict[str, KeySpec] = {}
        self._chunks: dict[str, list[np.ndarray]] = {}  # per key, one array per episode
        self._ends = np.zeros(0, dtype=np.int64)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._spec)

    @property
    def spec(self) -> dict[str, KeySpec]:
        return dict(self._spec)

    @property
    def n_episodes(self) -> int:
        return len(self._ends)

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    def __len__(self) -> int:
        return self.n_episodes

    def add_episode(self, steps: Mapping[str, np.ndarray]) -> int:
        length = episode_length(steps)
        if self.n_episodes == 0:
            self._spec = spec_of(steps)
            self._chunks = {key: [] for key in self._spec}
        else:
            check_fits(self._spec, steps, where="MemoryEpisodeStore.add_episode")
        for key in self._spec:
            self._chunks[key].append(np.array(steps[key], copy=True))
        self._ends = np.append(self._ends, np.int64(self.n_steps + length))
        return self.n_episodes - 1

    def get_episode(self, i: int) -> dict[str, np.ndarray]:
        n = self.n_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range: the store holds {n} episodes (valid: {-n}..{n - 1})")
        return {key: chunks[i].copy() for key, chunks in self._chunks.items()}

    def iter_episodes(self, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        for i in range(start, self.n_episodes):
            yield self.get_episode(i)

    def get_key(self, key: str) -> np.ndarray:
        if key not in self._spec:
            raise KeyError(f"the store has no key {key!r}; its keys are {list(self._spec)}")
        return np.concatenate(self._chunks[key], axis=0)
