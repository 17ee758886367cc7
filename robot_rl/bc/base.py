"""The base-policy interface residual RL builds on, and adapters to it.

A base policy is anything with

    reset() -> None                                   # a new episode starts (forget action chunks, history)
    act(obs: dict[str, np.ndarray]) -> np.ndarray     # one unbatched observation dict -> action (A,) in [-1, 1]

called once per env step, in order, from the first observation of an episode on. `BCPolicy` (robot_rl.bc.policy)
is one. Any other policy -- a function, a policy saved by another framework, a scripted controller -- becomes one
through `CallablePolicy`:

    base = CallablePolicy(lambda obs: my_torch_policy(obs["state"]))             # returns (A,)
    base = CallablePolicy(lerobot_policy.select_action, reset=lerobot_policy.reset)
    base = CallablePolicy(predict_chunk)                                           # returns (K, A): replayed

`load_base_policy(DIR)` opens what robot_rl saves: a BC checkpoint (`robot-rl bc train`) or a Policy directory
(a SAC/TD3 checkpoint's `agent/policy`, acting deterministically).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class BasePolicy(Protocol):
    """reset() at every episode start; act(obs) -> (A,) float32 in [-1, 1] at every step."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


class CallablePolicy:
    """Any callable obs -> action (A,) or action chunk (K, A) as a BasePolicy.

    A chunk is executed open loop: its actions one per step, then the callable is asked again. Actions are
    clipped to [-1, 1]; a non-finite action is refused with an error (never passed on to a robot).
    """

    def __init__(self, fn: Callable[[dict[str, np.ndarray]], np.ndarray], reset: Callable[[], None] | None = None,
                 action_dim: int | None = None):
        self.fn = fn
        self._reset_fn = reset
        self.action_dim = action_dim
        self._chunk: np.ndarray | None = None  # (K, A) being replayed
        self._index = 0

    def reset(self) -> None:
        self._chunk, self._index = None, 0
        if self._reset_fn is not None:
            self._reset_fn()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self._chunk is None or self._index >= len(self._chunk):
            out = np.asarray(self.fn(obs), dtype=np.float32)
            if out.ndim not in (1, 2) or out.size == 0:
                raise ValueError(f"the base policy returned shape {out.shape}; "
                                 "expected an action (A,) or a chunk (K, A)")
            self._chunk, self._index = (out[None] if out.ndim == 1 else out), 0
        action = self._chunk[self._index]
        self._index += 1
        if self.action_dim is not None and action.shape != (self.action_dim,):
            raise ValueError(f"the base policy's action has shape {action.shape}; the env expects ({self.action_dim},)")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"the base policy returned a non-finite action {action}")
        return np.clip(action, -1.0, 1.0)


def load_base_policy(path: str | Path, device: str = "cpu") -> BasePolicy:
    """A BC checkpoint (bc_policy.json) or a robot_rl Policy directory (policy.json) as a BasePolicy."""
    from robot_rl.agents.policy import POLICY_CONFIG, Policy
    from robot_rl.bc.policy import BC_CONFIG, BCPolicy

    path = Path(path)
    if (path / BC_CONFIG).is_file():
        return BCPolicy.load(path, device=device)
    if (path / POLICY_CONFIG).is_file():
        policy = Policy.load(path, device=device)
        policy.eval()
        return CallablePolicy(lambda obs: policy.act(obs, deterministic=True), action_dim=policy.action_dim)
    for sub in ("agent/policy", "policy"):  # a checkpoint or agent directory holding a policy
        if (path / sub / POLICY_CONFIG).is_file():
            return load_base_policy(path / sub, device)
    raise FileNotFoundError(
        f"{path} holds no base policy: expected a BC checkpoint ({BC_CONFIG}, from `robot-rl bc train`) or a "
        f"policy directory ({POLICY_CONFIG}); wrap any other policy in robot_rl.bc.CallablePolicy"
    )
