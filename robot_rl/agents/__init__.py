"""Off-policy learners (SAC with the RLPD recipe, TD3) and the deployable Policy.

    agent = make_agent(AgentConfig(), env.observation_space, env.action_space)
    replay = agent.make_replay(capacity=100_000)
    replay.add(obs, action, reward, next_obs, terminated, truncated)
    agent.update_many(replay, n_updates=agent.cfg.utd_ratio)
    action = agent.policy.act(obs)            # (A,) in [-1, 1]

The names are loaded on first use (PEP 562), so `robot_rl.agents.config` and
`robot_rl.agents.residual_config` import without torch: `robot-rl --help` builds its parser from
those dataclasses and must not pay torch's ~1 s import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

    from robot_rl.agents.agent import Agent
    from robot_rl.agents.config import AgentConfig
    from robot_rl.agents.policy import GRIPPER_VALUES, Policy
    from robot_rl.agents.residual_config import ResidualConfig

__all__ = ["GRIPPER_VALUES", "Agent", "AgentConfig", "Policy", "ResidualConfig", "make_agent"]

# public name -> the module that defines it
_LAZY = {
    "Agent": "robot_rl.agents.agent",
    "AgentConfig": "robot_rl.agents.config",
    "GRIPPER_VALUES": "robot_rl.agents.policy",
    "Policy": "robot_rl.agents.policy",
    "ResidualConfig": "robot_rl.agents.residual_config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robot_rl.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def make_agent(
    cfg: AgentConfig,
    obs_space: gym.Space,
    action_space: gym.spaces.Box,
    device: str | torch.device = "cpu",
    seed: int | None = None,
) -> Agent:
    """An agent for these spaces. Actions must be a 1-d Box on [-1, 1] (wrap others with gymnasium's RescaleAction)."""
    import gymnasium as gym
    import numpy as np

    from robot_rl.agents.agent import Agent
    from robot_rl.spaces import as_dict_space, obs_spec

    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"action space {action_space} is not supported; expected a 1-d Box on [-1, 1]")
    if not (np.allclose(action_space.low, -1.0) and np.allclose(action_space.high, 1.0)):
        raise ValueError(
            f"action space bounds are {action_space.low}..{action_space.high}; the learner needs [-1, 1] "
            "(wrap the env with gymnasium.wrappers.RescaleAction(env, -1.0, 1.0))"
        )
    return Agent(cfg, obs_spec(as_dict_space(obs_space)), int(action_space.shape[0]), device=device, seed=seed)
