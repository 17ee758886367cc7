"""Tiny image tasks for agent tests: a context shown only as image colour, and a small frozen-ResNet-10 agent."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from robot_rl import keys
from robot_rl.agents import AgentConfig, make_agent

FRONT = keys.image_key("front")


def color_image(s: np.ndarray) -> np.ndarray:
    """A 32x32 image whose red and green levels encode s in [-0.7, 0.7]^2."""
    img = np.full((32, 32, 3), 128, np.uint8)
    img[..., 0], img[..., 1] = int((s[0] + 1) * 127.5), int((s[1] + 1) * 127.5)
    return img


def frozen_resnet_agent(state_dim: int, **overrides):
    """A seeded agent (2-d actions) on a state of `state_dim` and one 32x32 camera, frozen cached ResNet-10, small nets."""
    torch.manual_seed(0)
    space = gym.spaces.Dict(
        {
            keys.STATE: gym.spaces.Box(-1, 1, (state_dim,), np.float32),
            FRONT: gym.spaces.Box(0, 255, (32, 32, 3), np.uint8),
        }
    )
    cfg = AgentConfig(
        **{"hidden_dims": (64, 64), "latent_dim": 32, "encoder": "resnet10", "freeze_encoder": True, "batch_size": 128}
        | overrides
    )
    return make_agent(cfg, space, gym.spaces.Box(-1, 1, (2,), np.float32), seed=0)
