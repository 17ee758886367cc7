"""The acting core: one function chooses every action, in the in-process loop and in the actor node alike.

    acting = Acting(action_dim, policy=agent.policy, warmup=RandomWarmup(low, high, rng), rng=rng,
                    base=base_or_None, base_noise=0.1, arbiter=Arbiter(ArbiterConfig(), action_dim) or None)
    acting.reset()                                                   # at every episode start
    choice = acting.choose(obs, warmup=steps < warmup_steps, cmd=teleop_command_or_None, ee_quat_wxyz=quat)
    execute(choice.action); record(choice.action, base_action=choice.base_action,
                                   policy_action=choice.proposed, is_intervention=choice.is_intervention)

One step, in this order:
1. The base policy (residual RL), when there is one, acts every step, warm-up included, so a base with memory
   sees the whole episode; its action is the step's `base_action`.
2. The proposal. In warm-up: with a base, clip(base + N(0, base_noise)); without one, the warm-up policy (uniform
   random, the sim task's scripted expert, or a hold that keeps the gripper). After warm-up: the policy, sampled
   (training) or its mean (`deterministic`); a residual policy returns clip(base + its correction).
3. The arbiter, when there is one (robot_rl.teleop.arbiter): a person's or the scripted operator's command, while
   engaged, replaces the proposal (`is_intervention`); a device lost mid-intervention, or a verdict, holds the arm
   (`held`). A non-finite proposal reaches the arbiter as zeros (its gripper memory stays finite), but is executed
   as proposed when nobody overrides it, so the safety filter downstream refuses it where it can be seen.

With `steering` (noise-space steering of a flow base, DSRL; robot_rl.bc.steering.NoiseSteering) steps 1-2 are
instead: the latent action -- in warm-up the base's own noise, after it the policy's (sampled or its mean) -- and
the base's action integrated from it, which is both the step's `base_action` and the proposal; the latent is the
step's `latent_action` (what the agent learns on).

A residual policy on a BC base with the same frozen image trunk (same cameras and sizes, equal weights by
fingerprint; a residual agent takes its base's trunk when created) runs the trunk once per step for both: this
step's trunk features stand in for the frames the base and the policy read. Any other pair runs two passes.

ROS-free and MuJoCo-free: plain arrays and dicts in, a `Choice` out. The caller owns the clock, the episode
bookkeeping, the safety filter and the recording.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from robot_rl.acting.config import ActorConfig
from robot_rl.agents.residual import ResidualPolicy, shared_trunk
from robot_rl.bc.base import BaseActionError, load_base_policy, prepare_base_acting
from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop.arbiter import Arbiter

POLICY, WARMUP, INTERVENTION, HOLD = "policy", "warmup", "intervention", "hold"  # what a step's action was


class WarmupPolicy(Protocol):
    """What acts before the policy does (without a base policy): `reset` at episode start, `act` every step."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class RandomWarmup:
    """Uniform random actions in [low, high] (per dim) from the caller's generator."""

    def __init__(
        self, low: np.ndarray | float, high: np.ndarray | float, rng: np.random.Generator, action_dim: int | None = None
    ):
        shape = (action_dim,) if action_dim is not None else np.shape(low)
        self.low, self.high = np.broadcast_to(low, shape), np.broadcast_to(high, shape)  # (A,)
        self.rng = rng

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class HoldWarmup:
    """Zero motion with the gripper where it was last commanded: before any policy only a person moves the arm
    (the actor node's `warmup:=teleop`, recording demonstrations on hardware)."""

    def __init__(self, action_dim: int, gripper_action: Callable[[], float]):
        self.action_dim = action_dim
        self.gripper_action = gripper_action  # () -> the last commanded gripper, in action units [-1, 1]

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        hold = np.zeros(self.action_dim, np.float32)
        hold[-1] = self.gripper_action()
        return hold


@dataclass(frozen=True)
class Choice:
    """One step's decision."""

    action: np.ndarray  # (A,) float32 to execute (before any safety filter)
    proposed: np.ndarray  # (A,) float32 what the warm-up or the policy proposed (recorded as `policy_action`)
    base_action: np.ndarray | None  # (A,) float32 the base policy's action (residual RL), else None
    proposed_by: str  # POLICY or WARMUP
    is_intervention: bool = False  # a person's (or the scripted operator's) action replaced the proposal
    held: bool = False  # the arbiter held the arm (device lost mid-intervention, or after a verdict)
    infer_s: float | None = None  # wall seconds base + policy took, when the policy proposed
    latent_action: np.ndarray | None = None  # (K * A,) float32 the latent action of noise steering, else None

    @property
    def source(self) -> str:
        """What the executed action was: INTERVENTION, HOLD, POLICY or WARMUP."""
        return INTERVENTION if self.is_intervention else HOLD if self.held else self.proposed_by


class Acting:
    """Chooses the action of every step: warm-up or policy, on a base policy when given, then the arbiter.

    `policy` may be replaced at any time (the actor node swaps in weights from the learner; the in-process loop
    passes its agent's policy, trained in place). A policy acts as `policy.act(obs, deterministic=...)`, with
    `base_action=` when there is a base (a residual policy).
    """

    def __init__(
        self,
        action_dim: int,
        *,
        policy=None,
        warmup: WarmupPolicy | None = None,
        rng: np.random.Generator | None = None,
        base=None,
        base_noise: float = 0.0,
        arbiter: Arbiter | None = None,
        deterministic: bool = False,
        steering=None,
    ):
        if base_noise < 0:
            raise ValueError(f"base_noise={base_noise}; the std of the base's warm-up noise must be >= 0")
        if arbiter is not None and arbiter.action_dim != action_dim:
            raise ValueError(f"the arbiter acts in {arbiter.action_dim} dims, the policy in {action_dim}")
        self.action_dim = action_dim
        self.policy = policy  # Policy | ResidualPolicy | None
        self.warmup = warmup  # without a base: what proposes in warm-up
        self.rng = rng if rng is not None else np.random.default_rng()  # the base's warm-up noise
        self.base = base  # robot_rl.bc.base.BasePolicy | None: residual RL
        self.base_noise = base_noise  # std of N(0, .) added to the base's action in warm-up
        self.arbiter = arbiter
        self.deterministic = deterministic  # the policy's mean action (evaluation) instead of a sample
        self.steering = steering  # robot_rl.bc.steering.NoiseSteering | None: the policy picks the base's noise
        self.trunk_shared: bool | None = None  # the last policy step ran one trunk pass for base and residual

    def reset(self) -> None:
        """At every episode start: the base, the warm-up policy and the arbiter forget the last episode."""
        for part in (self.base, self.warmup, self.arbiter, self.steering):
            if part is not None:
                part.reset()

    def choose(
        self,
        obs: dict[str, np.ndarray],
        *,
        warmup: bool,
        cmd: TeleopCommand | None = None,
        ee_quat_wxyz: np.ndarray | None = None,
    ) -> Choice:
        """This step's action. `warmup`: the warm-up acts instead of the policy; `cmd`: the latest teleop command
        (None: nobody else acts); `ee_quat_wxyz` (4,): the tool orientation, for an arbiter in the tool frame."""
        t0 = time.perf_counter()
        latent = None
        if self.steering is not None:  # DSRL: the base acts from the latent action's noise
            latent = self.steering.warmup_latent(self.rng) if warmup else self._policy_act(obs, None)
            proposed = base_action = self.steering.action(obs, latent)
        else:
            if self.base is not None and not warmup:  # one frozen-trunk pass for base and residual, when they can
                obs = self._shared_trunk_obs(obs)
            base_action = self._base_act(obs) if self.base is not None else None
            proposed = self._warmup_act(obs, base_action) if warmup else self._policy_act(obs, base_action)
        proposed_by, infer_s = (WARMUP, None) if warmup else (POLICY, time.perf_counter() - t0)
        if self.arbiter is None:
            return Choice(proposed, proposed, base_action, proposed_by, infer_s=infer_s, latent_action=latent)
        out = self.arbiter.step(np.where(np.isfinite(proposed), proposed, 0.0), cmd, ee_quat_wxyz)
        action = out.action if out.is_intervention or out.held else proposed
        return Choice(action, proposed, base_action, proposed_by, out.is_intervention, out.held, infer_s, latent)

    def refused_choice(self, proposed_by: str) -> Choice:
        """The step of a base policy that raised or returned an unusable action: a NaN action (the safety filter
        makes it a hold), and under noise steering a zero latent (an episode records the latent at every step)."""
        hold = np.full(self.action_dim, np.nan, dtype=np.float32)
        latent = None if self.steering is None else np.zeros(self.steering.latent_dim, np.float32)
        return Choice(hold, hold, None, proposed_by, latent_action=latent)

    def _shared_trunk_obs(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`obs` with each camera's frame replaced by its frozen-trunk features (C', h, w), computed once for the
        base and the residual policy when they share the trunk (robot_rl.agents.residual.shared_trunk: a BC base
        with a frozen trunk of the same layout and fingerprint); both encoders pass such features straight to their
        necks, so the action is the two-pass one. Otherwise `obs` itself, and each runs its own trunk."""
        encoder = shared_trunk(self.policy, self.base)
        self.trunk_shared = encoder is not None
        if encoder is None or any(k not in obs for k in encoder.image_keys):
            return obs  # a missing key is reported by the policies themselves, in their words
        with torch.no_grad():
            batch = {k: torch.as_tensor(np.asarray(obs[k])[None]).to(self.policy.device) for k in encoder.image_keys}
            feats = encoder.trunk_features(batch)
        return {**obs, **{k: v[0].cpu().numpy() for k, v in feats.items()}}

    def _base_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = np.asarray(self.base.act(obs), dtype=np.float32)
        if action.shape != (self.action_dim,):
            raise BaseActionError(
                f"the base policy's action has shape {action.shape}; the robot takes ({self.action_dim},)"
            )
        return action

    def _warmup_act(self, obs: dict[str, np.ndarray], base_action: np.ndarray | None) -> np.ndarray:
        if base_action is not None:
            noise = self.rng.normal(0.0, self.base_noise, base_action.shape) if self.base_noise > 0 else 0.0
            return np.clip(base_action + noise, -1.0, 1.0).astype(np.float32)
        if self.warmup is None:
            raise ValueError("warm-up asked for, but there is neither a warm-up policy nor a base policy")
        return np.asarray(self.warmup.act(obs), dtype=np.float32)

    def _policy_act(self, obs: dict[str, np.ndarray], base_action: np.ndarray | None) -> np.ndarray:
        if self.policy is None:
            raise ValueError("no policy to act with yet: act with warmup=True until one is set")
        with torch.no_grad():
            if base_action is None:
                return self.policy.act(obs, deterministic=self.deterministic)
            return self.policy.act(obs, deterministic=self.deterministic, base_action=base_action)


def node_acting(
    cfg: ActorConfig, action_dim: int, gripper_action: Callable[[], float], obs_spec: dict[str, list[int]] | None = None
) -> Acting:
    """The actor node's acting core from its parameters: before any policy uniform random (warmup=random) or a hold
    that keeps the gripper (warmup=teleop; `gripper_action` () -> the last commanded gripper in [-1, 1]); with
    base_policy (residual RL) the base acts every step, plus noise until a residual arrives; a person's teleop
    command wins through the arbiter; with steer=noise (DSRL) the flow base acts from the policy's latent action (its
    own noise until a policy arrives). A base whose layout does not fit `obs_spec` / `action_dim`, or that is no flow
    base under steer=noise, is refused (BasePolicyError, one line)."""
    base = load_base_policy(cfg.base_policy, obs_spec=obs_spec, action_dim=action_dim) if cfg.base_policy else None
    prepare_base_acting(base)  # a BC base's frozen trunk: its fast pass and fingerprint now, not in the first tick
    steering = None
    if base is not None and cfg.steer == "noise":  # DSRL: the flow base acts from the policy's latent action
        from robot_rl.bc.steering import NoiseSteering

        base, steering = None, NoiseSteering(base, cfg.noise_bound, cfg.base_policy)
    rng = np.random.default_rng(cfg.seed)
    warmup = {"random": RandomWarmup(-1.0, 1.0, rng, action_dim), "teleop": HoldWarmup(action_dim, gripper_action)}.get(
        cfg.warmup
    )
    return Acting(
        action_dim,
        warmup=warmup,
        rng=rng,
        base=base,
        base_noise=cfg.base_noise,
        arbiter=Arbiter(cfg.arbiter(), action_dim),
        deterministic=cfg.deterministic,
        steering=steering,
    )


def residual_mismatch(policy, base_policy: str, steering=None) -> str:
    """Why `policy` cannot act on the base policy `base_policy` ("" when it can): a residual policy needs a base
    and no steering, a base needs a residual policy; noise steering (`steering`, a NoiseSteering) needs a plain
    policy whose action is the base's latent action (K * A dims)."""
    residual = isinstance(policy, ResidualPolicy)
    if steering is not None:
        if residual:
            return (
                f"this actor steers the noise of the flow base {base_policy} (steer:=noise): it needs a plain policy "
                "acting in its latent space (a learner started with steer:=noise), not a residual one"
            )
        if policy.action_dim != steering.latent_dim:
            return (
                f"this actor steers the noise of the flow base {base_policy} (steer:=noise): the policy's action "
                f"must be its latent action of {steering.latent_dim} dims (K x A = {steering.chunk_shape}), got "
                f"{policy.action_dim}"
            )
        return ""
    if residual == bool(base_policy):
        return ""
    return (
        "a residual policy needs a base policy: start the actor with base_policy:=DIR"
        if residual
        else f"this actor runs residual RL on {base_policy}: it needs a residual policy (a learner "
        "started with base_policy), not a plain one"
    )
