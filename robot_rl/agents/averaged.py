"""The deployed policy as a moving average of the trained one (`AgentConfig.actor_ema`, `encoder_ema`).

With `actor_ema` the actor steps train a copy of the actor and the policy's actor (what acts, is evaluated, saved and
pushed) follows it at that rate. Its features come from the encoder, which the critic trains: with `encoder_ema`
the deployed encoder's trained parts (image necks; a trunk trained through the critic) follow a trained copy at the
same rate too, so the averaged actor reads the averaged features it was trained on rather than the newest necks.
A frozen trunk is one module shared by both encoders (never copied, never averaged).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from robot_rl.nets.obs_encoder import ObsEncoder


def trained_copy(encoder: ObsEncoder) -> ObsEncoder:
    """A copy of `encoder` to train while `encoder` follows it; a frozen trunk (and its folded copy) is shared."""
    memo: dict[int, object] = {}
    if encoder.freeze_trunk and encoder.trunk is not None:
        memo[id(encoder.trunk)] = encoder.trunk
        if encoder._folded is not None:
            memo[id(encoder._folded)] = encoder._folded
    return copy.deepcopy(encoder, memo)


def float_pairs(pairs: list[tuple[nn.Module, nn.Module]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """([averaged tensors], [the tensors they follow]) of every floating tensor of each (average, source) pair,
    leaving out the tensors both share (a frozen trunk): `torch._foreach_lerp_(*pairs, rate)` steps the averages."""
    averaged, sources = [], []
    for target, online in pairs:
        t_sd, o_sd = target.state_dict(), online.state_dict()
        for name, t in t_sd.items():
            if t.is_floating_point() and t.data_ptr() != o_sd[name].data_ptr():
                averaged.append(t)
                sources.append(o_sd[name])
    return averaged, sources


def trained_part(encoder: ObsEncoder) -> tuple[nn.Module, str]:
    """(what of a trained encoder copy an agent state saves, its key prefix in the policy's state): the necks when
    the trunk is frozen (the trunk is the deployed encoder's, saved with the policy), else the whole encoder."""
    return (encoder.necks, "encoder.necks.") if encoder.freeze_trunk else (encoder, "encoder.")


def match_trained_copies(saved: dict[str, dict], modules: dict[str, nn.Module], prefixes: dict[str, str]) -> dict:
    """An agent state saved with other averaging settings, fitted to this agent's modules (`prefixes`: each trained
    copy's module name -> its part's key prefix in the policy's state): a trained copy this agent has and the state
    lacks starts from the deployed part; one the state has and this agent lacks becomes the deployed part (same
    shapes, so the optimisers' states apply either way)."""
    saved = dict(saved)
    for name, prefix in prefixes.items():
        if "policy" not in saved:
            break
        if name in modules and name not in saved:
            saved[name] = {k[len(prefix) :]: v for k, v in saved["policy"].items() if k.startswith(prefix)}
        elif name in saved and name not in modules:
            trained = saved.pop(name)
            saved["policy"] = {**saved["policy"], **{f"{prefix}{k}": v for k, v in trained.items()}}
    return saved
