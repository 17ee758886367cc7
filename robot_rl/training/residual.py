"""Residual RL in the in-process loop (`robot-rl train --base-policy DIR`): the base acts, the agent corrects it.

Per env step the base policy acts first (every step, warm-up included, so a base with memory sees the whole
episode); its action is recorded as the step's `base_action`. Warm-up executes clip(base + N(0, base_noise));
after it, the residual agent's stochastic action clip(base + scale * residual). Demo transitions get the base
action the base policy takes along each demo (`relabel`). Evaluation runs its own copy of the base, so an
evaluation in the middle of a training episode leaves the training base's memory as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robot_rl import keys
from robot_rl.bc.base import BasePolicy, load_base_policy


class ResidualActing:
    """The acting side of residual RL for one env (training) plus an evaluation copy of the base."""

    def __init__(self, base: BasePolicy, eval_base: BasePolicy, agent, base_noise: float, np_rng: np.random.Generator,
                 obs_keys: list[str]):
        self.base, self.eval_base, self.agent = base, eval_base, agent
        self.base_noise = base_noise
        self.np_rng = np_rng
        self.obs_keys = list(obs_keys)
        self.base_action: np.ndarray | None = None  # (A,) the base's action at the last `act`

    def reset(self) -> None:
        """At every training episode start."""
        self.base.reset()
        self.base_action = None

    def _base_act(self, base: BasePolicy, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = np.asarray(base.act(obs), dtype=np.float32)
        if action.shape != (self.agent.action_dim,):
            raise ValueError(f"the base policy's action has shape {action.shape}; "
                             f"the env takes ({self.agent.action_dim},)")
        return action

    def act(self, obs: dict[str, np.ndarray], warmup: bool) -> np.ndarray:
        """This training step's action; sets `base_action`."""
        self.base_action = self._base_act(self.base, obs)
        if warmup:
            noise = self.np_rng.normal(0.0, self.base_noise, self.base_action.shape) if self.base_noise > 0 else 0.0
            return np.clip(self.base_action + noise, -1.0, 1.0).astype(np.float32)
        with torch.no_grad():
            return self.agent.policy.act(obs, deterministic=False, base_action=self.base_action)

    # --- evaluation: deterministic residual on the evaluation copy of the base ---------------------
    def eval_reset(self) -> None:
        self.eval_base.reset()

    def eval_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return self.agent.policy.act(obs, deterministic=True, base_action=self._base_act(self.eval_base, obs))

    # --- demos ------------------------------------------------------------------------------------
    def relabel(self, episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The episode with `base_action` set to what the base policy does along its observations."""
        return relabel_with_base(episode, self.eval_base, self.obs_keys, self.agent.action_dim)


def relabel_with_base(episode: dict[str, np.ndarray], base: BasePolicy, obs_keys: list[str],
                      action_dim: int) -> dict[str, np.ndarray]:
    """The episode with `base_action` set to what `base` does along its observations (demos for residual RL);
    `base` is reset before and after."""
    base.reset()
    n = len(episode[keys.ACTION])
    actions = []
    for t in range(n):
        action = np.asarray(base.act({k: episode[k][t] for k in obs_keys}), dtype=np.float32)
        if action.shape != (action_dim,):
            raise ValueError(f"the base policy's action has shape {action.shape}; the env takes ({action_dim},)")
        actions.append(action)
    base.reset()
    return {**episode, keys.BASE_ACTION: np.stack(actions).astype(np.float32)}


def make_residual_acting(base_policy: str | Path, agent, base_noise: float, np_rng: np.random.Generator,
                         device: str = "cpu") -> ResidualActing:
    """Load the base twice (training and evaluation copies) and check it fits the agent's action size."""
    base, eval_base = load_base_policy(base_policy, device), load_base_policy(base_policy, device)
    dim = getattr(base, "action_dim", None)
    if dim is not None and dim != agent.action_dim:
        raise ValueError(f"the base policy at {base_policy} acts in {dim} dims; the env takes {agent.action_dim}")
    print(f"[train] residual RL on the base policy {base_policy} (residual scale {agent.residual.residual_scale}, "
          f"actor after {agent.residual.critic_only_steps} critic-only updates)")
    return ResidualActing(base, eval_base, agent, base_noise, np_rng, list(agent.obs_spec))


def residual_eval_fns(policy_path: Path, base_policy: str | Path, device: str = "cpu"):
    """(act, reset) of a saved residual policy on its base, for `robot-rl eval` of a residual run."""
    from robot_rl.agents.residual import ResidualPolicy

    policy = ResidualPolicy.load(policy_path, device=device)
    policy.eval()
    base = load_base_policy(base_policy, device)
    return (lambda obs: policy.act(obs, deterministic=True, base_action=base.act(obs))), base.reset
