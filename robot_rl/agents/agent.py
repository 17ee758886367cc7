"""The learner: SAC (RLPD recipe) or TD3 on top of a deployable Policy.

Algorithm state lives here (critic ensemble, targets, temperature, optimisers, RNG, step counter); the
Policy (encoder + actor [+ grasp critic]) is what actors receive. Image encoders are trained through the
critic only; the actor sees detached features (DrQ/RLPD). As in DrQ-v2, the target critics read the online
encoder's features of the next observation (no target encoder): one encoder pass per side per update.
One `update` is one critic step and, when asked and due (`actor_update_every`), one actor + temperature step.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from robot_rl.agents.averaged import float_pairs, match_trained_copies, trained_copy, trained_part
from robot_rl.agents.checkpoint import load_agent_files, save_agent_files
from robot_rl.agents.config import AgentConfig
from robot_rl.agents.critic import CriticEnsemble
from robot_rl.agents.policy import Policy
from robot_rl.agents.success_pose import SuccessPoseHead
from robot_rl.nets.obs_encoder import FrameFeatures
from robot_rl.nets.pretrained import load_resnet10_weights
from robot_rl.replay import Batch, ReplayBuffer
from robot_rl.spaces import space_from_spec


class Agent:
    def __init__(
        self,
        cfg: AgentConfig,
        obs_spec: dict[str, list[int]],
        action_dim: int,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        load_pretrained: bool = True,
    ):
        self.cfg = cfg
        self.device = torch.device(device)
        self.obs_spec = obs_spec
        self.action_dim = action_dim
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())  # follows torch.manual_seed
        self.generator = torch.Generator(self.device).manual_seed(seed)

        self.policy = self._make_policy(cfg, obs_spec, action_dim)
        encoder = self.policy.encoder
        if cfg.encoder == "resnet10" and cfg.encoder_weights and load_pretrained:
            load_resnet10_weights(encoder.trunk, cfg.encoder_weights)
        self.policy.to(self.device)
        self.arm_dim = self.policy.arm_dim
        self.critic = CriticEnsemble(self.policy.feature_dim, self.arm_dim, cfg).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_grasp = (
            None if self.policy.grasp_critic is None else copy.deepcopy(self.policy.grasp_critic).requires_grad_(False)
        )

        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), device=self.device, requires_grad=True)
        self.target_entropy = cfg.target_entropy if cfg.target_entropy is not None else -self.arm_dim / 2.0
        self.best_autonomous_success: float | None = None  # with target_entropy_ratchet: the best rate so far
        learns = any(p.requires_grad for p in encoder.parameters())  # necks, or a trunk trained through the critic
        self.train_encoder = trained_copy(encoder) if cfg.actor_ema and cfg.encoder_ema and learns else encoder
        encoder_params = [p for p in self.train_encoder.parameters() if p.requires_grad]
        start, stop = cfg.success_pose_slice
        self.success_pose = (
            SuccessPoseHead(self.policy.feature_dim, stop - start, symlog_scale=cfg.success_pose_symlog or 0.0).to(
                self.device
            )
            if cfg.success_pose_weight
            else None
        )
        aux_params = [] if self.success_pose is None else list(self.success_pose.parameters())
        self.critic_opt = torch.optim.Adam(
            [*self.critic.parameters(), *encoder_params, *aux_params], lr=cfg.critic_lr, fused=True
        )
        # With actor_ema the actor steps train a copy; the policy's actor (what acts and is saved) averages it, and
        # with encoder_ema its encoder too (robot_rl.agents.averaged).
        self.actor_ema = cfg.actor_ema or 0.0  # unset (no recipe applied) is off
        self.train_actor = copy.deepcopy(self.policy.actor) if self.actor_ema else self.policy.actor
        averaged = [(self.policy.actor, self.train_actor)] if self.actor_ema else []
        if self.train_encoder is not encoder:
            averaged.append((encoder, self.train_encoder))
        self._ema_pairs = float_pairs(averaged)
        self.actor_opt = torch.optim.Adam(self.train_actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.temp_opt = torch.optim.Adam([self.log_alpha], lr=cfg.temp_lr, fused=True)
        self.grasp_opt = (
            None
            if self.policy.grasp_critic is None
            else torch.optim.Adam(self.policy.grasp_critic.parameters(), lr=cfg.grasp_critic_lr, fused=True)
        )

        pairs = [(self.target_critic, self.critic)]
        if self.target_grasp is not None:
            pairs.append((self.target_grasp, self.policy.grasp_critic))
        self._targets, self._onlines = float_pairs(pairs)

        self.frame_features = (
            FrameFeatures(encoder, cfg.feature_cache_augs, torch.Generator(self.device).manual_seed(seed + 1))
            if encoder.freeze_trunk
            else None
        )  # give to ReplayBuffer(frame_features=...) so no update re-encodes frames (see make_replay)
        self.step = 0

    # --- what a subclass (robot_rl.agents.residual) changes ------------------------------------------
    def _make_policy(self, cfg: AgentConfig, obs_spec: dict[str, list[int]], action_dim: int) -> Policy:
        return Policy(cfg, obs_spec, action_dim)

    def _features(self, obs: dict[str, torch.Tensor], base_action: torch.Tensor | None) -> torch.Tensor:
        """What the actor and critics read (B, F): the encoder's features of the augmented observations."""
        enc = self.train_encoder
        return enc(enc.augment(obs, self.generator))

    # --- replay helper ---------------------------------------------------------------------------
    def make_replay(self, capacity: int, seed: int | None = None) -> ReplayBuffer:
        """A ReplayBuffer matching this agent: its obs spec, n_step, gamma, device and frozen-trunk feature cache."""
        return ReplayBuffer(
            space_from_spec(self.obs_spec),
            self.action_dim,
            capacity,
            n_step=self.cfg.n_step,
            gamma=self.cfg.gamma,
            device=self.device,
            frame_features=self.frame_features,
            seed=seed,
            pose_slice=None if self.success_pose is None else self.cfg.success_pose_slice,
        )

    @property
    def temperature(self) -> float:
        return float(self.log_alpha.detach().exp())

    def set_autonomous_success(self, rate: float | None) -> float:
        """The entropy target for a policy that recently succeeded on its own in `rate` of its episodes (None:
        not known yet): `target_entropy` (default -arm_dim / 2), moved linearly towards `target_entropy_final` as
        the rate goes to 1, when that is set; with `target_entropy_ratchet` the best rate given so far counts. A
        policy that succeeds stops exploring as widely, so its sampled actions (what the robot executes while
        training) come close to its mean (what is evaluated)."""
        start = self.cfg.target_entropy if self.cfg.target_entropy is not None else -self.arm_dim / 2.0
        final = self.cfg.target_entropy_final
        if rate is None:  # not known yet (a resume counts the episode log again, from here)
            self.best_autonomous_success = None
        elif self.cfg.target_entropy_ratchet:  # the best rate so far: a dip does not raise the exploration again
            rate = max(float(rate), self.best_autonomous_success or 0.0)
            self.best_autonomous_success = rate
        share = 0.0 if rate is None or final is None else min(max(float(rate), 0.0), 1.0)
        self.target_entropy = start if final is None else start + (final - start) * share
        return self.target_entropy

    # --- updates ---------------------------------------------------------------------------------
    def update(self, batch: Batch, update_actor: bool = True) -> dict[str, float]:
        """One critic step (+ actor and temperature step when `update_actor` and due). Returns losses as floats."""
        return {k: float(v) for k, v in self._update(batch, update_actor).items()}

    def update_many(self, sampler, n_updates: int) -> dict[str, float]:
        """`n_updates` critic steps on fresh batches, the actor on the last one (RLPD's UTD). Metrics of the last."""
        metrics: dict[str, torch.Tensor] = {}
        for i in range(n_updates):
            metrics = self._update(sampler.sample(self.cfg.batch_size), update_actor=i == n_updates - 1)
        return {k: float(v) for k, v in metrics.items()}

    def _noise(self, n: int, dim: int) -> torch.Tensor:
        return torch.randn(n, dim, device=self.device, generator=self.generator)

    def _update(self, batch: Batch, update_actor: bool) -> dict[str, torch.Tensor]:
        cfg, actor, g = self.cfg, self.train_actor, self.generator
        if not self.policy.training:  # evaluation leaves it in eval mode; train() walks every module (~0.5 ms)
            self.policy.train()
            self.train_actor.train()
            self.train_encoder.train()
        n = len(batch)

        # Features: the online encoder on obs (with grad, for the critic) and on next obs (without).
        feats = self._features(batch.obs, batch.base_action)  # (B, F)
        with torch.no_grad():
            next_feats = self._features(batch.next_obs, batch.next_base_action)  # (B, F)
        with torch.no_grad():
            # Critic target: r + discount * (min over a random subset of target critics [- alpha log pi]).
            if actor.stochastic:
                next_action, next_log_prob = actor(next_feats, self._noise(n, self.arm_dim))
            else:
                next_action, _ = actor(next_feats, None)
                smooth = (self._noise(n, self.arm_dim) * cfg.td3_policy_noise).clamp(
                    -cfg.td3_noise_clip, cfg.td3_noise_clip
                )
                next_action = (next_action + smooth).clamp(-1.0, 1.0)
            next_q = self.target_critic.values(self.target_critic(next_feats, next_action))  # (E, B)
            if cfg.critic_subsample < cfg.n_critics:
                members = torch.randperm(cfg.n_critics, device=self.device, generator=g)[: cfg.critic_subsample]
                next_q = next_q[members]
            next_v = next_q.min(dim=0).values  # (B,)
            alpha = self.log_alpha.exp()
            if actor.stochastic and cfg.backup_entropy:
                next_v = next_v - alpha * next_log_prob
            target = batch.reward + batch.discount * next_v  # (B,)

        arm_action = batch.action[:, : self.arm_dim]
        q_out = self.critic(feats, arm_action)  # (E, B, 1 or bins)
        if self.critic.hl_gauss is None:
            q = q_out.squeeze(-1)
            critic_loss = F.mse_loss(q, target.expand_as(q))
        else:
            q = self.critic.values(q_out.detach())
            target_probs = self.critic.hl_gauss.to_probs(target)  # (B, bins)
            critic_loss = -(target_probs * torch.log_softmax(q_out, dim=-1)).sum(-1).mean()
        metrics = {"critic_loss": critic_loss.detach(), "q_mean": q.detach().mean(), "target_mean": target.mean()}
        encoder_bc = self._encoder_bc(feats, batch)
        if encoder_bc is not None:
            metrics["bc_encoder_loss"] = encoder_bc.detach()
            critic_loss = critic_loss + cfg.bc_encoder_weight * encoder_bc
        if self.success_pose is not None and batch.has_success is not None:
            pose_loss = self.success_pose.loss(feats, batch.success_offset, batch.has_success)
            if pose_loss is not None:
                metrics["success_pose_loss"] = pose_loss.detach()
                critic_loss = critic_loss + cfg.success_pose_weight * pose_loss
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        if self.policy.grasp_critic is not None:
            metrics["grasp_loss"] = self._update_grasp(batch, feats.detach(), next_feats)

        if update_actor and self.step % cfg.actor_update_every == 0:
            metrics.update(self._update_actor(feats.detach(), self._imitation(batch)))

        torch._foreach_lerp_(self._targets, self._onlines, cfg.tau)
        self.step += 1
        return metrics

    def _update_grasp(self, batch: Batch, feats: torch.Tensor, next_feats: torch.Tensor) -> torch.Tensor:
        """Double-DQN step of the 3-way grasp critic on the gripper dim of the stored action."""
        grasp = self.policy.grasp_critic
        values = self.policy.gripper_values
        taken = (batch.action[:, -1:] - values).abs().argmin(dim=-1)  # (B,) index of the nearest gripper value
        with torch.no_grad():
            best_next = grasp(next_feats).argmax(dim=-1, keepdim=True)  # (B, 1)
            next_q = self.target_grasp(next_feats).gather(1, best_next).squeeze(1)
            target = batch.reward + batch.discount * next_q
        q = grasp(feats).gather(1, taken[:, None]).squeeze(1)
        loss = F.mse_loss(q, target)
        self.grasp_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.grasp_opt.step()
        return loss.detach()

    def _encoder_bc(self, feats: torch.Tensor, batch: Batch) -> torch.Tensor | None:
        """The BC term's error on the encoder's undetached features (`bc_encoder_weight`), for the critic's step: the
        demonstrated actions train the necks too. The actor's parameters get gradients here that its own step clears
        (`zero_grad` before its backward), so only the encoder learns from it. None when off or nothing to imitate."""
        imitate = self._imitation(batch) if self.cfg.bc_encoder_weight and feats.requires_grad else None
        if imitate is None:
            return None
        rows, target = imitate
        mean_action = self.train_actor.sample(feats, None)[2]
        return (mean_action - target).pow(2).sum(-1).mul(rows).sum() / rows.sum().clamp(min=1)

    def _imitation(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(rows (B,) bool, actions (B, arm_dim)) the BC term imitates: demo and intervention rows; None when off."""
        if not self.cfg.bc_weight:  # None (no recipe applied) or 0: off
            return None
        masks = [m for m in (batch.is_demo, batch.is_intervention) if m is not None]
        if not masks:
            return None
        rows = masks[0] if len(masks) == 1 else masks[0] | masks[1]
        return rows, batch.action[:, : self.arm_dim]

    def _update_actor(
        self, feats: torch.Tensor, imitate: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Actor step against the (just updated) critics' ensemble mean; SAC also steps the temperature.

        `imitate` (rows, actions): the optional BC term pulls the actor's action on those rows towards those actions."""
        actor = self.train_actor
        noise = self._noise(feats.shape[0], self.arm_dim) if actor.stochastic else None
        action, log_prob, mean_action, log_std = actor.sample(feats, noise)
        q = self.critic.values(self.critic(feats, action, detach_params=True)).mean(dim=0)  # (B,)
        out: dict[str, torch.Tensor] = {}
        if actor.stochastic:
            alpha = self.log_alpha.exp()
            if self.cfg.entropy_measure == "gaussian":
                # The Gaussian's entropy (it depends on the stds only) is both what the temperature holds and what the
                # bonus raises: the squashed action's log-prob would also pull every mean towards the tanh's centre,
                # harder as the temperature climbs to hold a low target (peg_insert: it reached 0.34 and the success
                # fell from 1.0 to 0.05). A penalty on the excess holds the entropy down where the critic is flat
                # and Adam lets the stds drift up (pick_cube: 2.5 -> 3.9 with the temperature falling).
                # The excess is taken per dim (each at most its share of the target): held on the sum alone, the
                # bonus piled the entropy into the dim where the critic is flattest (peg_insert with the operator:
                # three dims at the floor, one at the log-std cap, its samples random in sign, the operator taking
                # over on 15-20 % of the steps).
                per_dim = actor.entropy_per_dim(log_std)  # (B, A), from the same pass as the action
                gaussian = per_dim.sum(-1)
                entropy = gaussian.detach()
                excess = (per_dim - self.target_entropy / self.arm_dim).clamp(min=0.0).sum(-1).mean()
                actor_loss = (-alpha.detach() * gaussian - q).mean() + excess
            else:
                actor_loss = (alpha.detach() * log_prob - q).mean()
                entropy = -log_prob.detach()
            temp_loss = alpha * (entropy - self.target_entropy).mean()
            self.temp_opt.zero_grad(set_to_none=True)
            temp_loss.backward()
            self.temp_opt.step()
            out.update(temperature=alpha.detach(), entropy=entropy.mean(), temp_loss=temp_loss.detach())
        else:
            actor_loss = -q.mean()
        if imitate is not None:
            # The mean action imitates: comparing the sampled one also shrinks the std, which then fights the
            # entropy target; the temperature climbs and its bonus drags the means (pick_cube pixels: 80 % -> 60 %).
            rows, target = imitate
            bc_loss = (mean_action - target).pow(2).sum(-1).mul(rows).sum() / rows.sum().clamp(min=1)
            actor_loss = actor_loss + self.cfg.bc_weight * bc_loss
            out["bc_loss"] = bc_loss.detach()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        if self.actor_ema:
            torch._foreach_lerp_(*self._ema_pairs, self.actor_ema)
        out["actor_loss"] = actor_loss.detach()
        return out

    # --- RNG --------------------------------------------------------------------------------------
    def rng_state(self) -> torch.Tensor:
        """State of the generator every update draws from (noise, augmentation, critic subsets)."""
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    # --- state and persistence -------------------------------------------------------------------
    def _modules(self) -> dict[str, torch.nn.Module]:
        mods = {"policy": self.policy, "critic": self.critic, "target_critic": self.target_critic}
        if self.target_grasp is not None:
            mods["target_grasp"] = self.target_grasp
        if self.train_actor is not self.policy.actor:
            mods["train_actor"] = self.train_actor
        if self.train_encoder is not self.policy.encoder:
            mods["train_encoder"] = trained_part(self.train_encoder)[0]
        if self.success_pose is not None:
            mods["success_pose"] = self.success_pose
        return mods

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"critic": self.critic_opt, "actor": self.actor_opt, "temperature": self.temp_opt}
        if self.grasp_opt is not None:
            opts["grasp"] = self.grasp_opt
        return opts

    def state_dict(self) -> dict:
        """Nets, targets, optimisers, temperature, step counter and RNG state (tensors share storage: copy to keep)."""
        return {
            "modules": {name: m.state_dict() for name, m in self._modules().items()},
            "optimizers": {name: o.state_dict() for name, o in self._optimizers().items()},
            "log_alpha": self.log_alpha.detach(),
            "rng": self.rng_state(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        modules = self._modules()
        prefixes = {"train_actor": "actor.", "train_encoder": trained_part(self.policy.encoder)[1]}
        saved = match_trained_copies(state["modules"], modules, prefixes)  # saved with other averaging settings
        if set(saved) != set(modules):
            raise ValueError(f"agent state holds modules {sorted(saved)}, this agent has {sorted(modules)}")
        for name, module in modules.items():
            module.load_state_dict({k: v.to(self.device) for k, v in saved[name].items()})
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"].to(self.device))
        self.set_rng_state(state["rng"])
        self.step = int(state["step"])

    def config_dict(self) -> dict:
        return {"agent_config": self.cfg.to_dict(), "obs_spec": self.obs_spec, "action_dim": self.action_dim}

    def save(self, path_dir: str | Path) -> None:
        """safetensors + JSON into `path_dir` (see robot_rl.agents.checkpoint); also the policy alone under policy/."""
        path = Path(path_dir)
        save_agent_files(path, self.config_dict(), self.state_dict())
        self.policy.save(path / "policy")

    @classmethod
    def load(cls, path_dir: str | Path, device: str | torch.device = "cpu") -> Agent:
        config, state = load_agent_files(Path(path_dir))
        agent = cls(
            AgentConfig.from_dict(config["agent_config"]),
            config["obs_spec"],
            int(config["action_dim"]),
            device=device,
            seed=0,
            load_pretrained=False,
        )
        agent.load_state_dict(state)
        return agent
