"""Residual RL in the in-process loop (`robot-rl train --base-policy DIR`): the base acts, the agent corrects it.

The acting itself is the shared acting core (robot_rl.acting.core.Acting, given `base`): per env step the base
policy acts first (every step, warm-up included, so a base with memory sees the whole episode) and its action is
recorded as the step's `base_action`; warm-up executes clip(base + N(0, base_noise)); after it, the residual agent's
stochastic action clip(base + scale * residual). This module loads the base twice -- the training copy, and
`eval_base` for evaluation, so an evaluation in the middle of a training episode leaves the training base's memory
as it was -- and gives demo transitions the base action the base policy takes along each demo (`relabel`).

Noise-space steering (`--steer noise`, DSRL; robot_rl.bc.steering) on a flow base: `make_noise_steering` loads the
base twice (training and evaluation copies) and gives the agent's latent action space, K * A dims on [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from robot_rl.bc.base import BasePolicy, load_base_policy, prepare_base_acting, relabel_with_base
from robot_rl.bc.steering import NoiseSteering
from robot_rl.spaces import as_dict_space, obs_spec


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


def make_residual_bases(base_policy: str | Path, agent, device: str = "cpu") -> ResidualBases:
    """Load the base twice (training and evaluation copies), refusing one whose layout does not fit the agent's."""
    base, eval_base = (
        load_base_policy(base_policy, device, obs_spec=agent.obs_spec, action_dim=agent.action_dim) for _ in range(2)
    )
    print(
        f"[train] residual RL on the base policy {base_policy} (residual scale {agent.residual.residual_scale}, "
        f"actor after {agent.residual.critic_only_steps} critic-only updates)"
    )
    if agent.adopt_base_trunk(eval_base):  # a new agent: one trunk for base and residual, run once per step
        print(f"[train] the residual's frozen image trunk is the base's ({base_policy}): one trunk pass per step")
    for each in (base, eval_base):  # warm-up steps and demo relabelling run the base's own trunk: its fast pass
        prepare_base_acting(each)
    return ResidualBases(base, eval_base, list(agent.obs_spec), agent.action_dim)


@dataclass
class SteeringBases:
    """The flow base of a noise-steered run (DSRL): training and evaluation copies, and the agent's action space."""

    steering: NoiseSteering  # acts in the training episodes
    eval_steering: NoiseSteering  # acts in evaluations

    @property
    def latent_space(self) -> gym.spaces.Box:
        """The agent's action space: the latent action, K * A dims on [-1, 1]."""
        return gym.spaces.Box(-1.0, 1.0, (self.steering.latent_dim,), np.float32)


def make_noise_steering(
    base_policy: str | Path, env: gym.Env, noise_bound: float, device: str = "cpu"
) -> SteeringBases:
    """Load the flow base twice for `env`'s layout (refusing one that does not fit, or that is not a flow base)."""
    spec, action_dim = obs_spec(as_dict_space(env.observation_space)), int(env.action_space.shape[0])
    steering, eval_steering = (
        NoiseSteering(
            load_base_policy(base_policy, device, obs_spec=spec, action_dim=action_dim), noise_bound, str(base_policy)
        )
        for _ in range(2)
    )
    print(
        f"[train] noise-space steering (DSRL) of the flow base {base_policy}: the agent picks its initial noise, "
        f"{steering.latent_dim} latent dims within +-{noise_bound}; no demo replay (demo actions have no noise)"
    )
    for each in (steering, eval_steering):  # the flow base runs its own frozen trunk every step: its fast pass
        prepare_base_acting(each.base)
    return SteeringBases(steering, eval_steering)
