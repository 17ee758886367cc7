"""Observation spaces as the learner sees them: always a Dict of state vectors and uint8 images.

A flat Box env is wrapped as `{keys.STATE: box}`. In a Dict space a key is an image when its Box is
uint8 with shape (H, W, C), C in (1, 3); every other Box is a state vector (flattened to (D,)).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl import keys


def _is_image_box(box: gym.spaces.Box) -> bool:
    return box.dtype == np.uint8 and len(box.shape) == 3 and box.shape[-1] in (1, 3)


def as_dict_space(space: gym.Space) -> gym.spaces.Dict:
    """A flat Box becomes Dict({STATE: box}); a Dict of Boxes is kept; anything else is refused."""
    if isinstance(space, gym.spaces.Box):
        return gym.spaces.Dict({keys.STATE: space})
    if isinstance(space, gym.spaces.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box):
                raise ValueError(
                    f"observation key {key!r} has space {sub}; the learner accepts only Box entries "
                    "(float state vectors or uint8 (H, W, C) images with C in 1, 3)"
                )
        return space
    raise ValueError(f"observation space {space} is not supported; expected a Box or a Dict of Boxes")


def as_dict_obs(obs: Any) -> dict[str, np.ndarray]:
    """The dict form of one observation: an array becomes {STATE: array}; a dict is kept (values as arrays)."""
    if isinstance(obs, dict):
        return {k: np.asarray(v) for k, v in obs.items()}
    return {keys.STATE: np.asarray(obs)}


def image_keys(space: gym.spaces.Dict) -> tuple[str, ...]:
    """Keys whose Box is a uint8 (H, W, C) image, in sorted order."""
    return tuple(sorted(k for k, s in space.spaces.items() if _is_image_box(s)))


def state_keys(space: gym.spaces.Dict) -> tuple[str, ...]:
    """Keys that are not images (state vectors), in sorted order."""
    return tuple(sorted(k for k, s in space.spaces.items() if not _is_image_box(s)))


def obs_spec(space: gym.spaces.Dict) -> dict[str, list[int]]:
    """JSON-able description of a Dict observation space: key -> shape (images (H, W, C), states (D,) flattened)."""
    spec: dict[str, list[int]] = {}
    for key in image_keys(space):
        spec[key] = list(space.spaces[key].shape)
    for key in state_keys(space):
        spec[key] = [int(np.prod(space.spaces[key].shape))]
    return spec


def spec_image_keys(spec: dict[str, list[int]]) -> tuple[str, ...]:
    """Image keys of an `obs_spec` (3-d shapes), sorted."""
    return tuple(sorted(k for k, shape in spec.items() if len(shape) == 3))


def spec_state_keys(spec: dict[str, list[int]]) -> tuple[str, ...]:
    """State keys of an `obs_spec` (1-d shapes), sorted."""
    return tuple(sorted(k for k, shape in spec.items() if len(shape) == 1))


def space_from_spec(spec: dict[str, list[int]]) -> gym.spaces.Dict:
    """The Dict space an `obs_spec` describes: uint8 (H, W, C) images in [0, 255], unbounded float32 states."""
    boxes: dict[str, gym.spaces.Box] = {}
    for key, shape in spec.items():
        if len(shape) == 3:
            boxes[key] = gym.spaces.Box(0, 255, tuple(shape), dtype=np.uint8)
        else:
            boxes[key] = gym.spaces.Box(-np.inf, np.inf, tuple(shape), dtype=np.float32)
    return gym.spaces.Dict(boxes)
