"""The flow-matching BC policy (`robot-rl bc train --kind flow`): a chunk of K actions generated from noise.

    policy = FlowBCPolicy(BCPolicyConfig(kind="flow", chunk_size=8), obs_spec, action_dim=4)
    chunk = policy.predict_chunk(obs)                 # (K, A) from fresh Gaussian noise
    chunk = policy.predict_chunk(obs, noise=z)        # z (K, A): the same z gives the same chunk (noise-space RL)
    action = policy.act(obs)                          # one step of a chunk, through ChunkExecution (as the MLP kind)

Conditional flow matching (rectified flow): along the straight path x_t = (1 - t) x_0 + t x_1 from noise
x_0 ~ N(0, I) to a demo chunk x_1, a velocity field v(features, t, x_t) is regressed on x_1 - x_0 (MSE over the
chunk steps inside the episode). Acting integrates dx/dt = v from x_0 at t = 0 to t = 1 in `flow_steps` Euler steps
and clips to [-1, 1]. The velocity field is an MLP on [obs features, sinusoidal embedding of t, flattened x_t]; the
obs features are the MLP kind's (normalised state, frozen-trunk image latents), computed once per prediction.
Everything else (normalisation, encoder, chunk execution, saving, checked payload bytes) is `BCPolicy`'s.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from robot_rl.bc.config import BCPolicyConfig
from robot_rl.bc.policy import BCPolicy, masked_mean
from robot_rl.nets.mlp import mlp
from robot_rl.nets.modes import evaluating

MAX_TIME_FREQ = 1000.0  # highest angular frequency (rad per unit of t) of the time embedding; the lowest is 1


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Flow times t (B,) in [0, 1] -> (B, dim) [sin, cos] at `dim / 2` frequencies spaced geometrically in
    [1, MAX_TIME_FREQ], so the field can tell nearby times apart."""
    freqs = torch.exp(torch.linspace(0.0, math.log(MAX_TIME_FREQ), dim // 2, device=t.device))  # (dim / 2,)
    angles = t[:, None].float() * freqs[None]  # (B, dim / 2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FlowBCPolicy(BCPolicy):
    """A BCPolicy whose head is a velocity field; chunks come from Euler integration of it from noise."""

    def __init__(
        self,
        cfg: BCPolicyConfig,
        obs_spec: dict[str, list[int]],
        action_dim: int,
        meta: dict | None = None,
        noise_seed: int = 0,
    ):
        super().__init__(cfg, obs_spec, action_dim, meta)
        self.noise_rng = np.random.default_rng(noise_seed)  # initial noise of `predict_chunk(obs)` (noise=None)

    def make_head(self, feat_dim: int) -> nn.Module:
        """[features (F), time embedding, flattened chunk (K * A)] -> velocity (K * A)."""
        chunk_dim = self.cfg.chunk_size * self.action_dim
        return mlp(feat_dim + self.cfg.flow_time_dim + chunk_dim, self.cfg.hidden_dims, chunk_dim, self.cfg.layer_norm)

    def velocity(self, feats: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """features (B, F), times (B,), chunks x_t (B, K, A) -> velocities (B, K, A)."""
        inp = torch.cat([feats, time_embedding(t, self.cfg.flow_time_dim), x.flatten(1)], dim=-1)
        return self.head(inp).view_as(x)

    def forward(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        """Batched observations (B, ...) and initial noise (B, K, A) (None: zeros) -> chunks (B, K, A), unclipped."""
        feats = self.features(obs)  # (B, F): once, reused by every Euler step
        x = noise if noise is not None else feats.new_zeros(feats.shape[0], *self.chunk_shape)
        dt = 1.0 / self.cfg.flow_steps
        for i in range(self.cfg.flow_steps):
            t = feats.new_full((feats.shape[0],), i * dt)
            x = x + dt * self.velocity(feats, t, x)
        return x

    def chunk_loss(
        self,
        obs: dict[str, torch.Tensor],
        target: torch.Tensor,
        mask: torch.Tensor,
        loss: str,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Flow matching: MSE between v(features, t, x_t) and x_1 - x_0 at a uniform t per sample (`loss` unused)."""
        x1 = target  # (B, K, A)
        x0 = torch.randn(x1.shape, generator=generator).to(x1.device)
        t = torch.rand(x1.shape[0], generator=generator).to(x1.device)  # (B,)
        xt = (1.0 - t)[:, None, None] * x0 + t[:, None, None] * x1
        err = (self.velocity(self.features(obs), t, xt) - (x1 - x0)).pow(2)
        return masked_mean(err, mask)

    @torch.no_grad()
    def predict_chunk(self, obs: dict[str, np.ndarray], noise: np.ndarray | None = None) -> np.ndarray:
        """One unbatched observation dict -> chunk (K, A) in [-1, 1], integrated from `noise` (K, A), or, when
        None, from flow_noise_scale * N(0, I) drawn from `noise_rng`. The same obs and noise give the same chunk."""
        batch = self.batch_of(obs)
        if noise is None:
            noise = self.cfg.flow_noise_scale * self.noise_rng.standard_normal(self.chunk_shape)
        noise = np.asarray(noise, dtype=np.float32)
        if noise.shape != self.chunk_shape or not np.all(np.isfinite(noise)):
            raise ValueError(
                f"the initial noise must be a finite array of shape {self.chunk_shape} (K, A), got shape {noise.shape}"
            )
        with evaluating(self):
            return self(batch, torch.as_tensor(noise[None]).to(self.device))[0].clamp(-1.0, 1.0).cpu().numpy()


__all__ = ["FlowBCPolicy", "time_embedding"]
