"""The learner's view of observation spaces: always a Dict of state vectors and uint8 images."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robot_rl import keys
from robot_rl.spaces import as_dict_obs, as_dict_space, image_keys, obs_spec, space_from_spec, state_keys


def _make_dict_space() -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            keys.STATE: gym.spaces.Box(-1, 1, (18,), np.float32),
            keys.image_key("front"): gym.spaces.Box(0, 255, (64, 48, 3), np.uint8),
            keys.image_key("wrist"): gym.spaces.Box(0, 255, (32, 32, 1), np.uint8),
            "tcp_pose": gym.spaces.Box(-1, 1, (2, 3), np.float32),
            "heatmap": gym.spaces.Box(0, 1, (8, 8, 3), np.float32),  # float: a state, not an image
        }
    )


def test_a_flat_box_becomes_a_dict_with_one_state_entry():
    box = gym.spaces.Box(-1, 1, (7,), np.float32)
    space = as_dict_space(box)
    assert list(space.spaces) == [keys.STATE] and space.spaces[keys.STATE] is box
    obs = as_dict_obs(np.arange(7, dtype=np.float32))
    assert list(obs) == [keys.STATE] and obs[keys.STATE][6] == 6.0


def test_images_are_uint8_hwc_with_one_or_three_channels_and_everything_else_is_state():
    space = _make_dict_space()
    assert as_dict_space(space) is space
    assert image_keys(space) == ("image_front", "image_wrist")
    assert state_keys(space) == ("heatmap", "state", "tcp_pose")
    spec = obs_spec(space)
    assert spec == {
        "image_front": [64, 48, 3],
        "image_wrist": [32, 32, 1],
        "heatmap": [192],
        "state": [18],
        "tcp_pose": [6],
    }
    rebuilt = space_from_spec(spec)
    assert obs_spec(rebuilt) == spec


def test_unsupported_spaces_are_refused_with_the_offending_key_named():
    with pytest.raises(ValueError, match="Discrete"):
        as_dict_space(gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="'mode'"):
        as_dict_space(gym.spaces.Dict({"mode": gym.spaces.Discrete(2)}))
