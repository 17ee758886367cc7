"""What the learner reads off an episode: its observation spaces (to build an agent), and whether it fits one.

The learner never imports the sim: the observation layout comes from configuration, the demo store's spec or
a resumed run (`robot_rl.learner.episode_layout`, which also checks every incoming episode). An observation key is every stored key that is not
per-step bookkeeping (`robot_rl.keys.STEP_KEYS`, capture times, the learner's source columns); uint8
(H, W, C) keys are camera images, the rest state vectors -- the same rule as `robot_rl.spaces`.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from robot_rl import keys
from robot_rl.learner.ledger import SOURCE_KEYS
from robot_rl.spaces import as_dict_space, obs_spec

REQUIRED_STEP_KEYS = (keys.ACTION, keys.REWARD, keys.TERMINATED, keys.TRUNCATED)


ACTION_LOW, ACTION_HIGH = -1.0, 1.0  # the action space: every actor and env acts in [-1, 1] per dim
ACTION_TOLERANCE = 1e-3  # refuse actions beyond the bounds by more than this (float rounding passes)


class EpisodeMismatch(ValueError):
    """An episode that does not fit the learner's agent (keys, shapes, dtypes or values).

    `reason` is a short tag the learner counts refusals by: layout, length, non_finite, action_range, bool, task_meta.
    """

    def __init__(self, message: str, reason: str = "layout") -> None:
        super().__init__(message)
        self.reason = reason


def is_observation_key(key: str) -> bool:
    return (
        key not in keys.STEP_KEYS
        and key not in keys.OPTIONAL_STEP_KEYS
        and not key.startswith(keys.T_CAPTURE)
        and key not in SOURCE_KEYS
    )


def spaces_of(step_specs: Mapping[str, tuple[np.dtype, tuple[int, ...]]]) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
    """(observation Dict space, action Box on [-1, 1]) from {key: (dtype, per-step shape)} of stored episodes."""
    missing = [k for k in REQUIRED_STEP_KEYS if k not in step_specs]
    if missing:
        raise EpisodeMismatch(f"episodes lack {missing}; the learner needs {list(REQUIRED_STEP_KEYS)} per step")
    boxes = {}
    for key, (dtype, shape) in step_specs.items():
        if not is_observation_key(key):
            continue
        if np.dtype(dtype) == np.uint8 and len(shape) == 3:
            boxes[key] = gym.spaces.Box(0, 255, tuple(shape), dtype=np.uint8)
        else:
            boxes[key] = gym.spaces.Box(-np.inf, np.inf, tuple(shape) or (1,), dtype=np.float32)
    if not boxes:
        raise EpisodeMismatch(f"episodes hold no observation keys (keys: {sorted(step_specs)})")
    action_shape = tuple(step_specs[keys.ACTION][1])
    if len(action_shape) != 1 or action_shape[0] < 1:
        raise EpisodeMismatch(f"action must be a vector per step, got per-step shape {action_shape}")
    return gym.spaces.Dict(boxes), gym.spaces.Box(ACTION_LOW, ACTION_HIGH, action_shape, dtype=np.float32)


def specs_of_arrays(episode: Mapping[str, np.ndarray]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    return {k: (v.dtype, tuple(v.shape[1:])) for k, v in episode.items()}


def spec_of_spaces(obs_space: gym.spaces.Dict) -> dict[str, list[int]]:
    return obs_spec(as_dict_space(obs_space))


def check_episode(episode: Mapping[str, np.ndarray], spec: dict[str, list[int]], action_dim: int) -> int:
    """Raise EpisodeMismatch naming the first key that does not fit the agent; return the episode's length."""
    for key in REQUIRED_STEP_KEYS:
        if key not in episode:
            raise EpisodeMismatch(f"episode lacks {key!r}; an episode needs {list(REQUIRED_STEP_KEYS)}")
    n = len(episode[keys.ACTION])
    if n < 1:
        raise EpisodeMismatch("episode has no steps")
    lengths = {k: len(v) for k, v in episode.items() if v.ndim >= 1}
    if set(lengths.values()) != {n} or len(lengths) != len(episode):
        raise EpisodeMismatch(f"episode arrays must all be (T, ...) with the same T, got lengths {lengths}")
    for key, shape in spec.items():
        if key not in episode:
            raise EpisodeMismatch(f"episode lacks observation {key!r}; the agent observes {sorted(spec)}")
        got = episode[key]
        if len(shape) == 3:
            if got.dtype != np.uint8 or list(got.shape[1:]) != shape:
                raise EpisodeMismatch(
                    f"observation {key!r} must be uint8 {tuple(shape)} per step, got {got.dtype} {tuple(got.shape[1:])}"
                )
        elif int(np.prod(got.shape[1:])) != shape[0]:
            raise EpisodeMismatch(
                f"observation {key!r} must have {shape[0]} values per step, got per-step shape {tuple(got.shape[1:])}"
            )
    if episode[keys.ACTION].shape[1:] != (action_dim,):
        raise EpisodeMismatch(f"action must be ({action_dim},) per step, got {tuple(episode[keys.ACTION].shape[1:])}")
    for key in [*(k for k, s in spec.items() if len(s) == 1), keys.ACTION, keys.REWARD]:
        if not np.all(np.isfinite(np.asarray(episode[key], dtype=np.float64))):
            raise EpisodeMismatch(f"{key!r} holds non-finite values (NaN or inf); refusing to train on them")
    return n
