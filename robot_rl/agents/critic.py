"""Critics: a fused Q ensemble (scalar or HL-Gauss categorical output) and the HL-Gauss value transform."""

from __future__ import annotations

import math

import torch
from torch import nn

from robot_rl.agents.config import AgentConfig
from robot_rl.nets.mlp import EnsembleMLP


class HLGauss(nn.Module):
    """Histogram loss with Gaussian targets (Farebrother et al. 2024): a scalar target becomes a distribution
    over `bins` equal bins on [vmin, vmax] (a Gaussian of std sigma_ratio * bin width, integrated per bin)."""

    def __init__(self, vmin: float, vmax: float, bins: int, sigma_ratio: float):
        super().__init__()
        edges = torch.linspace(vmin, vmax, bins + 1)
        self.register_buffer("edges", edges, persistent=False)
        self.register_buffer("centers", (edges[:-1] + edges[1:]) / 2, persistent=False)
        self.sigma = sigma_ratio * (vmax - vmin) / bins
        self.vmin, self.vmax = vmin, vmax

    def to_probs(self, target: torch.Tensor) -> torch.Tensor:
        """(B,) scalar targets -> (B, bins) probabilities."""
        t = target.clamp(self.vmin, self.vmax)[:, None]
        cdf = torch.erf((self.edges[None, :] - t) / (math.sqrt(2.0) * self.sigma))  # (B, bins + 1)
        mass = cdf[:, 1:] - cdf[:, :-1]
        return mass / mass.sum(dim=-1, keepdim=True).clamp_min(1e-8)

    def to_value(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., bins) logits -> (...) expected value."""
        return torch.softmax(logits, dim=-1) @ self.centers


class CriticEnsemble(nn.Module):
    """Q(features, action) for `n_critics` members at once: (B, F), (B, A) -> (E, B, out), out = 1 or hl_gauss_bins."""

    def __init__(self, feature_dim: int, action_dim: int, cfg: AgentConfig):
        super().__init__()
        self.hl_gauss = (
            HLGauss(cfg.hl_gauss_range[0], cfg.hl_gauss_range[1], cfg.hl_gauss_bins, cfg.hl_gauss_sigma_ratio)
            if cfg.critic_loss == "hl_gauss"
            else None
        )
        out_dim = cfg.hl_gauss_bins if self.hl_gauss is not None else 1
        self.net = EnsembleMLP(cfg.n_critics, feature_dim + action_dim, cfg.hidden_dims, out_dim, cfg.layer_norm)

    def forward(self, feats: torch.Tensor, action: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Raw outputs (E, B, out): Q values (out = 1) or HL-Gauss logits."""
        return self.net((feats, action), detach_params=detach_params)

    def values(self, out: torch.Tensor) -> torch.Tensor:
        """(E, B, out) raw outputs -> (E, B) Q values."""
        return out.squeeze(-1) if self.hl_gauss is None else self.hl_gauss.to_value(out)
