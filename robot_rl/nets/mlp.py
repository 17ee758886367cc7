"""MLPs: a plain one (actor, grasp critic) and a fused ensemble (critics) computed with one bmm per layer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden_dims: tuple[int, ...], out_dim: int, layer_norm: bool) -> nn.Sequential:
    """Linear (-> LayerNorm) -> ReLU per hidden layer, then a linear output layer."""
    layers: list[nn.Module] = []
    dim = in_dim
    for width in hidden_dims:
        layers.append(nn.Linear(dim, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(nn.ReLU())
        dim = width
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class EnsembleMLP(nn.Module):
    """`n_members` independent MLPs with stacked weights: one batched matmul per layer, no Python loop per member.

    Input (B, in_dim) shared by all members (or (E, B, in_dim) per member, or a tuple of (B, in_i) parts that
    together make the in_dim columns); output (E, B, out_dim).
    """

    def __init__(self, n_members: int, in_dim: int, hidden_dims: tuple[int, ...], out_dim: int, layer_norm: bool):
        super().__init__()
        self.n_members = n_members
        self.layer_norm = layer_norm
        dims = (in_dim, *hidden_dims, out_dim)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.ln_weights = nn.ParameterList()
        self.ln_biases = nn.ParameterList()
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            # Same init as nn.Linear (kaiming-uniform with a=sqrt(5) -> U(-1/sqrt(in), 1/sqrt(in))).
            bound = 1.0 / math.sqrt(d_in)
            self.weights.append(nn.Parameter(torch.empty(n_members, d_in, d_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_members, 1, d_out).uniform_(-bound, bound)))
            if layer_norm and i < len(dims) - 2:
                self.ln_weights.append(nn.Parameter(torch.ones(n_members, 1, d_out)))
                self.ln_biases.append(nn.Parameter(torch.zeros(n_members, 1, d_out)))

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, ...], detach_params: bool = False) -> torch.Tensor:
        """x: (B, in), (E, B, in) or a tuple of (B, in_i) parts -> (E, B, out).

        `detach_params`: no gradient reaches the weights (actor loss). Parts are never concatenated: each has its
        own matmul, so backward computes input gradients only for the parts that need them (the actor loss needs
        the action's, not the detached features')."""
        n_layers = len(self.weights)
        for i in range(n_layers):
            w, b = self.weights[i], self.biases[i]
            if detach_params:
                w, b = w.detach(), b.detach()
            if isinstance(x, tuple) or x.dim() == 2:  # first layer, input shared by all members: (B, in) @ (in, E*out)
                e, d_in, d_out = w.shape
                w2 = w.permute(1, 0, 2).reshape(d_in, e * d_out)
                if isinstance(x, tuple):
                    widths = [part.shape[-1] for part in x]
                    if sum(widths) != d_in:
                        raise ValueError(
                            f"input parts of widths {widths} do not add up to the ensemble's {d_in} inputs"
                        )
                    y = None
                    for part, w_part in zip(x, w2.split(widths)):
                        y = part @ w_part if y is None else torch.addmm(y, part, w_part)
                    x = y
                else:
                    x = x @ w2
                x = x.view(x.shape[0], e, d_out).transpose(0, 1) + b
            else:
                x = torch.baddbmm(b, x, w)
            if i < n_layers - 1:
                if self.layer_norm:
                    g, beta = self.ln_weights[i], self.ln_biases[i]
                    if detach_params:
                        g, beta = g.detach(), beta.detach()
                    x = torch.addcmul(beta, F.layer_norm(x, x.shape[-1:]), g)
                x = F.relu_(x)  # in place: neither baddbmm nor addcmul needs its output for backward
        return x
