"""Residual RL on a base policy: the SAC/TD3 learner of `agent.py`, trained on a correction of the base's action.

    action = clip(base_action + residual_scale * residual(obs features, base_action), -1, 1)

The residual is tanh-bounded to [-1, 1] and its last layer starts at zero, so an untrained agent acts exactly as
the base policy (deterministically; SAC's stochastic action adds exploration around it). Both the actor and the
critics read the observation features with the base action appended: the critics see (obs features, base action,
total action). The base action of a transition's next observation comes from replay (`Batch.next_base_action`:
the base action stored with that row), so a base with memory (action chunks) is handled exactly. The actor waits
`critic_only_steps` updates while the critics learn the base's values first. The BC term (bc_weight > 0; the
pixel recipe sets 1, as for the plain agent) pulls the total mean action towards the demonstrated one on demo and
intervention rows; it acts only once the actor trains, so the agent still starts exactly at the base.

Nothing here is forked from the plain agent: `ResidualAgent` overrides the two hooks `Agent` has for it (the
policy it builds and the features it computes) and holds the actor back during the critic-only phase.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_rl.agents.agent import Agent
from robot_rl.agents.checkpoint import load_agent_files
from robot_rl.agents.config import AgentConfig
from robot_rl.agents.policy import ActionHead, Policy
from robot_rl.agents.residual_config import ResidualConfig
from robot_rl.nets.modes import evaluating
from robot_rl.replay import Batch
from robot_rl.spaces import as_dict_space, obs_spec

RESIDUAL_POLICY_FORMAT = "robot_rl.residual_policy/1"


class ResidualActionHead(ActionHead):
    """(obs features, base action) (B, F + A) -> total action (B, A) = clip(base + scale * residual, -1, 1).

    The base action is the last A columns of the input (see ResidualPolicy.features). The log-prob is the
    residual's (a constant shift from the total action's, clipping aside).
    """

    def __init__(self, in_dim: int, action_dim: int, cfg: AgentConfig, scale: float):
        super().__init__(in_dim, action_dim, cfg)
        self.scale = scale
        last = self.net[-1]
        nn.init.zeros_(last.weight)  # residual exactly 0 and SAC's log-std at mid-range until trained
        nn.init.zeros_(last.bias)

    def sample(
        self, feats: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        residual, log_prob, mean_residual, log_std = super().sample(feats, noise)  # (B, A) in [-1, 1]
        base = feats[:, -self.action_dim :]
        total = (base + self.scale * residual).clamp(-1.0, 1.0)
        mean_total = total if mean_residual is residual else (base + self.scale * mean_residual).clamp(-1.0, 1.0)
        return total, log_prob, mean_total, log_std


class ResidualPolicy(Policy):
    """The deployable residual: encoder + ResidualActionHead. It needs the base action at every step:

    total = policy.act(obs, base_action=base.act(obs))
    """

    def __init__(self, cfg: AgentConfig, obs_spec: dict[str, list[int]], action_dim: int, residual_scale: float):
        if cfg.discrete_gripper:
            raise ValueError("a residual policy corrects every action dim continuously; set discrete_gripper=False")
        super().__init__(cfg, obs_spec, action_dim)
        self.residual_scale = residual_scale
        self.actor = ResidualActionHead(self.encoder.out_dim + action_dim, action_dim, cfg, residual_scale)

    @property
    def feature_dim(self) -> int:
        return self.encoder.out_dim + self.action_dim

    def features(self, obs: dict[str, torch.Tensor], base_action: torch.Tensor) -> torch.Tensor:
        """(B, F) encoder features with the base action (B, A) appended -> (B, F + A)."""
        return torch.cat([self.encoder(obs), base_action.float()], dim=-1)

    @torch.no_grad()
    def act_batch(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False, base_action: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Batched observations (B, ...) and base actions (B, A) -> total actions (B, A) in [-1, 1]."""
        if base_action is None:
            raise ValueError("a residual policy needs the base policy's action: act_batch(obs, base_action=...)")
        with evaluating(self):
            return self.action_from_features(self.features(obs, base_action), deterministic)

    def act(
        self, obs: dict[str, np.ndarray], deterministic: bool = False, base_action: np.ndarray | None = None
    ) -> np.ndarray:
        """One unbatched observation and base action (A,) -> total action (A,) float32 in [-1, 1]."""
        if base_action is None:
            raise ValueError("a residual policy needs the base policy's action: act(obs, base_action=base.act(obs))")
        base = np.asarray(base_action, np.float32)
        if base.shape != (self.action_dim,):
            raise ValueError(f"base_action has shape {base.shape}; expected ({self.action_dim},)")
        missing = [k for k in self.obs_spec if k not in obs]
        if missing:
            raise ValueError(f"observation lacks {missing}; the policy expects {list(self.obs_spec)}")
        batch = {k: torch.as_tensor(np.asarray(obs[k])[None]).to(self.device) for k in self.obs_spec}
        base_t = torch.as_tensor(base[None]).to(self.device)
        return self.act_batch(batch, deterministic, base_t)[0].cpu().numpy().astype(np.float32)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "format": RESIDUAL_POLICY_FORMAT, "residual_scale": self.residual_scale}

    @classmethod
    def from_config_dict(cls, d: dict, device: str | torch.device = "cpu") -> ResidualPolicy:
        if d.get("format") != RESIDUAL_POLICY_FORMAT:
            raise ValueError(
                f"not a robot_rl residual policy (format {d.get('format')!r}, expected "
                f"{RESIDUAL_POLICY_FORMAT!r}); a plain policy loads with Policy.load"
            )
        return cls(
            AgentConfig.from_dict(d["agent_config"]), d["obs_spec"], int(d["action_dim"]), float(d["residual_scale"])
        ).to(device)


class ResidualAgent(Agent):
    def __init__(
        self,
        cfg: AgentConfig,
        residual: ResidualConfig,
        obs_spec: dict[str, list[int]],
        action_dim: int,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        load_pretrained: bool = True,
    ):
        self.residual = residual  # read by _make_policy during Agent.__init__
        super().__init__(cfg, obs_spec, action_dim, device=device, seed=seed, load_pretrained=load_pretrained)

    def _make_policy(self, cfg: AgentConfig, obs_spec: dict[str, list[int]], action_dim: int) -> ResidualPolicy:
        return ResidualPolicy(cfg, obs_spec, action_dim, self.residual.residual_scale)

    def _features(self, obs: dict[str, torch.Tensor], base_action: torch.Tensor | None) -> torch.Tensor:
        if base_action is None:
            raise ValueError(
                "residual updates need the base action of every transition (Batch.base_action and "
                "Batch.next_base_action, from ReplayBuffer.sample)"
            )
        return torch.cat([super()._features(obs, None), base_action.float()], dim=-1)

    def adopt_base_trunk(self, base) -> bool:
        """Before the first update, take the base policy's frozen trunk weights (a BC base with a frozen image
        trunk on the same cameras and image sizes; see `shared_trunk`): the features the replay caches and the ones
        the actor computes then come from one trunk, which the acting core runs once per step for both. Returns
        whether it did; any other base, or an agent that has updated (its necks learned on its own trunk), is left
        as it is. Call it before the replays cache any features."""
        from robot_rl.bc.base import frozen_trunk_encoder

        encoder = frozen_trunk_encoder(base)
        if self.step > 0 or encoder is None or not self.policy.encoder.freeze_trunk:
            return False
        return self.policy.encoder.adopt_trunk(encoder)

    def _update(self, batch: Batch, update_actor: bool) -> dict[str, torch.Tensor]:
        return super()._update(batch, update_actor and self.step >= self.residual.critic_only_steps)

    @property
    def actor_training(self) -> bool:
        """Whether the critic-only phase is over."""
        return self.step >= self.residual.critic_only_steps

    def config_dict(self) -> dict:
        return {**super().config_dict(), "residual_config": self.residual.to_dict()}

    @classmethod
    def load(cls, path_dir: str | Path, device: str | torch.device = "cpu") -> ResidualAgent:
        config, state = load_agent_files(Path(path_dir))
        if "residual_config" not in config:
            raise ValueError(f"{path_dir} holds a plain agent, not a residual one; load it with Agent.load")
        agent = cls(
            AgentConfig.from_dict(config["agent_config"]),
            ResidualConfig(**config["residual_config"]),
            config["obs_spec"],
            int(config["action_dim"]),
            device=device,
            seed=0,
            load_pretrained=False,
        )
        agent.load_state_dict(state)
        return agent


def shared_trunk(policy, base):
    """The encoder whose trunk features of an observation serve both a residual `policy` and its `base` (the
    policy's ObsEncoder), or None when they must each run their own: the base is not a BC policy with a frozen trunk,
    the layouts differ, or the weights do (by `ObsEncoder.trunk_fingerprint`, cached per weights' version)."""
    from robot_rl.bc.base import frozen_trunk_encoder

    base_encoder = frozen_trunk_encoder(base)
    if base_encoder is None or not isinstance(policy, ResidualPolicy):
        return None
    return policy.encoder if policy.encoder.shares_trunk_with(base_encoder) else None


def make_residual_agent(
    cfg: AgentConfig,
    residual: ResidualConfig,
    obs_space: gym.Space,
    action_space: gym.spaces.Box,
    device: str | torch.device = "cpu",
    seed: int | None = None,
) -> ResidualAgent:
    """A residual agent for these spaces (actions: a 1-d Box on [-1, 1], as for make_agent)."""
    if (
        not isinstance(action_space, gym.spaces.Box)
        or len(action_space.shape) != 1
        or not (np.allclose(action_space.low, -1.0) and np.allclose(action_space.high, 1.0))
    ):
        raise ValueError(
            f"action space {action_space} is not supported; expected a 1-d Box on [-1, 1] "
            "(wrap the env with gymnasium.wrappers.RescaleAction(env, -1.0, 1.0))"
        )
    return ResidualAgent(
        cfg, residual, obs_spec(as_dict_space(obs_space)), int(action_space.shape[0]), device=device, seed=seed
    )


def is_residual_agent_dir(path: str | Path) -> bool:
    """Whether a saved agent directory holds a residual agent."""
    config = Path(path) / "config.json"
    return config.is_file() and "residual_config" in json.loads(config.read_text())


def policy_from_bytes(data: bytes, device: str | torch.device = "cpu") -> Policy:
    """A plain or residual policy from `Policy.to_bytes` output, by the format in its config."""
    from robot_rl.agents.policy import payload_config

    config = payload_config(data)  # checked header, checksum and bounds; raises PolicyPayloadError
    cls = ResidualPolicy if config.get("format") == RESIDUAL_POLICY_FORMAT else Policy
    return cls.from_bytes(data, device)
