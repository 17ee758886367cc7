"""Residual RL in the in-process loop (`robot-rl train --base-policy DIR`): the base acts, the agent corrects it.

The acting itself is the shared acting core (robot_rl.actor.acting.Acting, given `base`): per env step the base
policy acts first (every step, warm-up included, so a base with memory sees the whole episode) and its action is
recorded as the step's `base_action`; warm-up executes clip(base + N(0, base_noise)); after it, the residual agent's
stochastic action clip(base + scale * residual). This module loads the base twice -- the training copy, and
`eval_base` for evaluation, so an evaluation in the middle of a training episode leaves the training base's memory
as it was -- and gives demo transitions the base action the base policy takes along each demo (`relabel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.bc.base import BasePolicy, load_base_policy


@dataclass
class ResidualBases:
    """The base policy of a residual run: a training copy (`base`) and an evaluation copy (`eval_base`)."""

    base: BasePolicy  # acts in the training episodes
    eval_base: BasePolicy  # acts in evaluations; relabels demos
    obs_keys: list[str]  # the observation keys the agent reads
    action_dim: int

    def relabel(self, episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The episode with `base_action` set to what the base policy does along its observations."""
        return relabel_with_base(episode, self.eval_base, self.obs_keys, self.action_dim)


def relabel_with_base(
    episode: dict[str, np.ndarray], base: BasePolicy, obs_keys: list[str], action_dim: int
) -> dict[str, np.ndarray]:
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


def make_residual_bases(base_policy: str | Path, agent, device: str = "cpu") -> ResidualBases:
    """Load the base twice (training and evaluation copies), refusing one whose layout does not fit the agent's."""
    base, eval_base = (
        load_base_policy(base_policy, device, obs_spec=agent.obs_spec, action_dim=agent.action_dim) for _ in range(2)
    )
    print(
        f"[train] residual RL on the base policy {base_policy} (residual scale {agent.residual.residual_scale}, "
        f"actor after {agent.residual.critic_only_steps} critic-only updates)"
    )
    return ResidualBases(base, eval_base, list(agent.obs_spec), agent.action_dim)
