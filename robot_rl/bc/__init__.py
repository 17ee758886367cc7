"""Behaviour cloning with action chunks, and the base-policy interface residual RL builds on.

result = train_bc(BCTrainConfig(demos="demos/pick_cube", out="bc/pick_cube"))   # or `robot-rl bc train`
base = load_base_policy("bc/pick_cube")       # BasePolicy: reset() per episode, act(obs) -> (A,)
base = CallablePolicy(any_fn)                 # any callable obs -> (A,) or (K, A) as a BasePolicy
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robot_rl.bc.base import BasePolicy, CallablePolicy, load_base_policy
    from robot_rl.bc.config import BCPolicyConfig, BCTrainConfig
    from robot_rl.bc.flow import FlowBCPolicy
    from robot_rl.bc.policy import BCPolicy, ChunkExecution, make_bc_policy
    from robot_rl.bc.train import BCResult, evaluate_base, train_bc

# Names load on first use (PEP 562), so `robot_rl.bc.config` imports without torch (`robot-rl --help` reads it).
_LAZY = {
    "BasePolicy": "base",
    "CallablePolicy": "base",
    "load_base_policy": "base",
    "BCPolicyConfig": "config",
    "BCTrainConfig": "config",
    "FlowBCPolicy": "flow",
    "BCPolicy": "policy",
    "ChunkExecution": "policy",
    "make_bc_policy": "policy",
    "BCResult": "train",
    "evaluate_base": "train",
    "train_bc": "train",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'robot_rl.bc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"robot_rl.bc.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BCPolicy",
    "BCPolicyConfig",
    "BCResult",
    "BCTrainConfig",
    "BasePolicy",
    "CallablePolicy",
    "ChunkExecution",
    "FlowBCPolicy",
    "evaluate_base",
    "load_base_policy",
    "make_bc_policy",
    "train_bc",
]
