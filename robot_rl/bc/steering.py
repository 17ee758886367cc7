"""Noise-space steering of a flow base (DSRL, `robot-rl train --base-policy DIR --steer noise`).

An off-policy agent (the plain SAC agent, acting in a latent space of K * A dims) chooses the flow base's initial
noise instead of an action; the base integrates its chunk deterministically from that noise, and the chunks are
executed as the flow kind executes its own: a new chunk every control step (from a new latent action), this step's
entries of the last K chunks averaged, the newest weighted most (temporal ensembling, the base's `ensemble_decay`):

    steering = NoiseSteering(load_base_policy("bc/flow"), noise_bound=1.5)
    steering.reset()                                  # at every episode start
    latent = agent.policy.act(obs)                    # (K * A,) in [-1, 1] (SAC's tanh-squashed action)
    action = steering.action(obs, latent)             # (A,): base.predict_chunk(obs, noise=1.5 * latent), ensembled

The robot never receives an action the base could not produce: every action is what the base executes for some
noises in [-noise_bound, noise_bound]^(K x A) (N(0, 1) draws fall there 87 % of the time per entry for a bound of
1.5). A zero latent action gives the base's zero-noise chunks; `zero_last_layer` makes an untrained agent's mean
exactly that, so it acts as the base with `flow_noise_scale` 0. (Executing only each chunk's first action instead
cut a 5-demo pick_cube flow base from 35 % to 5-15 % success: the ensembling is part of the base's competence.)

The agent learns on (obs, latent) transitions: the episode store keeps the executed action (`keys.ACTION`, what
the robot did) and the latent (`keys.NOISE_ACTION`), and `latent_episode` is what such an episode is to the
agent's replay. Demo actions have no latent, so DSRL runs without demo replay (see docs/base-policies.md).
"""

from __future__ import annotations

import inspect

import numpy as np
from torch import nn

from robot_rl import keys
from robot_rl.bc.base import BasePolicyError, checked_action
from robot_rl.bc.policy import ChunkExecution

NOISE_ACTION = keys.NOISE_ACTION


class NoiseSteering:
    """A flow base driven by a latent action w in [-1, 1]^(K * A): its initial noise is noise_bound * w."""

    def __init__(self, base, noise_bound: float, source: str = "the base"):
        if not _takes_noise(base):
            raise BasePolicyError(
                f"--steer noise steers a flow base's initial noise, and {source} is a {type(base).__name__} "
                "without one; train one with `robot-rl bc train --kind flow`, or use --steer residual"
            )
        if not 0.0 < noise_bound < 10.0:
            raise ValueError(f"noise_bound must be in (0, 10) (std units of the base's noise), got {noise_bound}")
        self.base = base
        self.noise_bound = float(noise_bound)
        self.chunk_shape = tuple(base.chunk_shape)  # (K, A)
        self.latent_dim = int(np.prod(self.chunk_shape))  # K * A: the agent's action size
        self.action_dim = self.chunk_shape[1]  # A: the robot's
        decay = float(getattr(getattr(base, "cfg", None), "ensemble_decay", 0.1))
        self.execution = ChunkExecution(self.chunk_shape[0], "ensemble", decay)  # every step's chunk, ensembled

    def reset(self) -> None:
        """A new episode: forget the chunks of the last one."""
        self.execution.reset()

    def noise_of(self, latent: np.ndarray) -> np.ndarray:
        """Latent action (K * A,) -> the base's initial noise (K, A) in [-noise_bound, noise_bound]."""
        latent = np.asarray(latent, np.float32)
        if latent.shape != (self.latent_dim,) or not np.all(np.isfinite(latent)):
            raise ValueError(f"the latent action must be finite, of shape ({self.latent_dim},); got {latent.shape}")
        return self.noise_bound * np.clip(latent, -1.0, 1.0).reshape(self.chunk_shape)

    def action(self, obs: dict[str, np.ndarray], latent: np.ndarray) -> np.ndarray:
        """This step's action (A,): the chunk integrated from the latent action's noise, ensembled with the last
        K - 1 chunks (call reset() at every episode start)."""
        chunk = self.base.predict_chunk(obs, noise=self.noise_of(latent))  # (K, A) in [-1, 1]
        return checked_action(self.execution.step(np.asarray(chunk, np.float32)), self.action_dim)

    def warmup_latent(self, rng: np.random.Generator) -> np.ndarray:
        """A latent action whose noise is the base's own when acting (flow_noise_scale * N(0, 1), clipped to the
        bound): in warm-up the base acts as it was trained to."""
        scale = float(getattr(getattr(self.base, "cfg", None), "flow_noise_scale", 1.0))
        return np.clip(rng.standard_normal(self.latent_dim) * scale / self.noise_bound, -1.0, 1.0).astype(np.float32)


def _takes_noise(base) -> bool:
    """Whether `base` is a flow base: `predict_chunk(obs, noise=...)` and a `chunk_shape` (K, A)."""
    predict = getattr(base, "predict_chunk", None)
    return callable(predict) and hasattr(base, "chunk_shape") and "noise" in inspect.signature(predict).parameters


def zero_last_layer(policy) -> None:
    """Zero the actor's last layer: its mean latent action is 0 (the base's zero-noise chunk) until it trains,
    and SAC's log-std sits mid-range (as for an untrained residual)."""
    last = policy.actor.net[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def latent_episode(episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A stored DSRL episode as the agent's replay sees it: the latent action in place of the executed one (and no
    base action: the agent reads none)."""
    if NOISE_ACTION not in episode:
        raise ValueError(
            f"this episode has no {NOISE_ACTION!r} column: it was not recorded by a noise-steered run "
            "(--steer noise), so there is no latent action to learn from"
        )
    out = {k: v for k, v in episode.items() if k not in (keys.BASE_ACTION, NOISE_ACTION)}
    out[keys.ACTION] = np.asarray(episode[NOISE_ACTION], np.float32)
    return out


__all__ = ["NOISE_ACTION", "NoiseSteering", "latent_episode", "zero_last_layer"]
