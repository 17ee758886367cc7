"""The timing loops both sides of every benchmark run, so ours and the peer's are measured the same way.

Imports only the standard library: the peer scripts in this folder (run by the peer's
Python, where robot_rl is not installed) import it as the sibling module `timing`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def progress(message: str) -> None:
    """Progress goes to stderr; stdout carries only results."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class EnvTiming:
    steps: int  # timed env steps (warm-up excluded)
    episodes: int  # episodes started in the timed window (each paid one reset, timed)
    elapsed_s: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.elapsed_s


def time_env_steps(env: Any, steps: int, warmup_steps: int, seed: int = 0) -> EnvTiming:
    """Env steps/s under uniformly random actions, resets included the way a training run has them.

    The env is reset whenever an episode terminates or is truncated (by the env's own time limit),
    and the reset's time counts. The first `warmup_steps` steps (renderer and JIT start-up, caches)
    are run and not timed; the timed window then starts from a fresh reset.
    """
    if steps < 1 or warmup_steps < 0:
        raise ValueError(f"steps must be >= 1 and warmup_steps >= 0, got steps={steps} warmup_steps={warmup_steps}")
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(warmup_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    actions = [env.action_space.sample() for _ in range(steps)]  # sampling is not the env's cost
    episodes = 1
    t0 = time.perf_counter()
    env.reset()
    for i, action in enumerate(actions):
        _, _, terminated, truncated, _ = env.step(action)
        if (terminated or truncated) and i + 1 < steps:  # N steps of L-step episodes pay ceil(N / L) resets
            env.reset()
            episodes += 1
    return EnvTiming(steps=steps, episodes=episodes, elapsed_s=time.perf_counter() - t0)


@dataclass
class CallTiming:
    calls: int  # timed calls (warm-up excluded)
    elapsed_s: float

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.elapsed_s


def time_calls(fn: Callable[[], object], calls: int, warmup_calls: int, label: str = "") -> CallTiming:
    """Wall time of `calls` calls of fn after `warmup_calls` untimed ones; progress on stderr."""
    if calls < 1 or warmup_calls < 0:
        raise ValueError(f"calls must be >= 1 and warmup_calls >= 0, got calls={calls} warmup_calls={warmup_calls}")
    for i in range(warmup_calls):
        t = time.perf_counter()
        fn()
        progress(f"  {label} warm-up {i + 1}/{warmup_calls}: {time.perf_counter() - t:.2f} s")
    t0 = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        fn()
        if calls <= 20 or (i + 1) % max(1, calls // 10) == 0:
            progress(f"  {label} timed {i + 1}/{calls}: {time.perf_counter() - t:.3f} s")
    return CallTiming(calls=calls, elapsed_s=time.perf_counter() - t0)
