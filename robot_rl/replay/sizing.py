"""How many transitions fit: the online replay's capacity against this machine's RAM.

The replay allocates its whole capacity up front (uint8 images, float32 vectors), so a capacity that
fits state observations (200k x 30 floats = 24 MB) can ask for ~20 GB with two 128x128 cameras.
"""

from __future__ import annotations

import os

import numpy as np

DEFAULT_CAPACITY = 200_000  # the RLPD / HIL-SERL default for state observations
AUTO_RAM_SHARE = 0.3  # an automatic capacity takes at most this share of RAM
MAX_RAM_SHARE = 0.6  # an explicit capacity beyond this share of RAM is refused


def row_bytes(obs_spec: dict[str, list[int]]) -> int:
    """Observation bytes per transition: images (H, W, C) as uint8, vectors as float32."""
    return sum(int(np.prod(shape)) * (1 if len(shape) == 3 else 4) for shape in obs_spec.values())


def ram_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def auto_capacity(obs_spec: dict[str, list[int]]) -> int:
    """DEFAULT_CAPACITY, lowered (to a multiple of 1000) to fit AUTO_RAM_SHARE of RAM."""
    fit = int(AUTO_RAM_SHARE * ram_bytes() / max(row_bytes(obs_spec), 1)) // 1000 * 1000
    return max(1000, min(DEFAULT_CAPACITY, fit))


def check_capacity(capacity: int, obs_spec: dict[str, list[int]], option: str = "replay_capacity") -> float:
    """GB the online replay's observations need; ValueError naming the largest `option` that fits if too many."""
    need = row_bytes(obs_spec) * capacity
    ram = ram_bytes()
    if need > MAX_RAM_SHARE * ram:
        raise ValueError(
            f"an online replay of {capacity} transitions of {obs_spec} needs ~{need / 1e9:.1f} GB, more "
            f"than {MAX_RAM_SHARE:.0%} of this machine's {ram / 1e9:.1f} GB: set {option} <= "
            f"{int(MAX_RAM_SHARE * ram / row_bytes(obs_spec))}"
        )
    return need / 1e9
