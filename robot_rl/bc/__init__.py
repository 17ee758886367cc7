"""Behaviour cloning with action chunks, and the base-policy interface residual RL builds on.

    result = train_bc(BCTrainConfig(demos="demos/pick_cube", out="bc/pick_cube"))   # or `robot-rl bc train`
    base = load_base_policy("bc/pick_cube")       # BasePolicy: reset() per episode, act(obs) -> (A,)
    base = CallablePolicy(any_fn)                 # any callable obs -> (A,) or (K, A) as a BasePolicy
"""

from robot_rl.bc.base import BasePolicy, CallablePolicy, load_base_policy
from robot_rl.bc.config import BCPolicyConfig, BCTrainConfig
from robot_rl.bc.policy import BCPolicy, ChunkExecution, make_bc_policy
from robot_rl.bc.train import BCResult, evaluate_base, train_bc

__all__ = ["BCPolicy", "BCPolicyConfig", "BCResult", "BCTrainConfig", "BasePolicy", "CallablePolicy", "ChunkExecution",
           "evaluate_base", "load_base_policy", "make_bc_policy", "train_bc"]
