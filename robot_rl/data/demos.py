"""Recording scripted demonstrations of a simulated task into an episode store.

`record_scripted_demos` drives the sim task's scripted expert (`robot_rl_sim.experts`) through
gymnasium and writes each attempt with `EpisodeRecorder`. With the `random` layout attempt j resets the env
with seed `seed + j`; with `spread` the reset seeds are chosen so that the episodes' goals (the cube, the hole)
cover the task's range, as a person recording demos would place them: from `SPREAD_POOL` x episodes candidate
seeds (a block of its own for every `seed`, so two seeds share no demo), each next one is the candidate whose goal
lies farthest from the goals already taken (farthest-point sampling). Either way a run is reproducible (the
store's metadata names the layout); failed attempts are discarded unless `keep_failures`.
The sim (and MuJoCo) is imported only when this runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore

DEMO_LAYOUTS = ("random", "spread")
SPREAD_POOL = 10  # candidate seeds per episode for the spread layout


def spread_seeds(env, seed: int, count: int, pool: int = SPREAD_POOL) -> list[int]:
    """`count` * `pool` candidate reset seeds of the block `seed`, ordered by farthest-point sampling of their goals'
    (x, y): each next one the candidate farthest from those before it (the first: the block's first seed)."""
    candidates = [seed * count * pool + k for k in range(count * pool)]
    goals = []
    for s in candidates:
        env.reset(seed=s)
        goals.append(np.asarray(env.unwrapped.task.goal_pos_m(), dtype=np.float64)[:2])
    points = np.stack(goals)
    order, nearest = [0], np.linalg.norm(points - points[0], axis=1)
    while len(order) < len(candidates):
        nxt = int(np.argmax(nearest))
        order.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
    return [candidates[i] for i in order]


@dataclass(frozen=True)
class DemoConfig:
    task: str  # sim task name, e.g. "pick_cube" (see robot_rl.envs.TASK_ENV_IDS)
    episodes: int  # episodes to add to the store
    out: Path  # episode store directory (created, or appended to)
    obs_mode: str = "pixels"  # "pixels" (state + camera images) or "state" (flat vector)
    seed: int = 0  # attempt j resets the env with seed + j; also seeds the expert's noise
    keep_failures: bool = False  # also store episodes in which the expert did not succeed
    noise: float = 0.0  # expert action noise (diversity of the demos)
    max_attempts: int | None = None  # give up after this many attempts (default 3 * episodes + 10)
    progress: bool = True  # show a tqdm progress bar
    layout: str = "spread"  # "spread": goals spread over the task's range; "random": attempt j resets with seed + j

    def __post_init__(self) -> None:
        if self.layout not in DEMO_LAYOUTS:
            raise ValueError(f"layout={self.layout!r}; choose one of {DEMO_LAYOUTS}")


@dataclass(frozen=True)
class DemoResult:
    store_path: Path  # where the episodes went
    added: int  # episodes added by this run
    attempts: int  # episodes the expert attempted
    successes: int  # attempts that reached the task's success
    added_steps: int  # steps in the added episodes
    store_episodes: int  # episodes in the store afterwards

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


def record_scripted_demos(cfg: DemoConfig) -> DemoResult:
    """Record `cfg.episodes` episodes of the task's scripted expert into the store at `cfg.out`."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    from robot_rl.envs import env_id_for_task
    from robot_rl_sim.experts import make_expert

    if cfg.episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {cfg.episodes}")
    if cfg.obs_mode not in ("pixels", "state"):
        raise ValueError(f"obs_mode must be 'pixels' or 'state'; got {cfg.obs_mode!r}")
    env = gym.make(env_id_for_task(cfg.task), obs_mode=cfg.obs_mode)
    try:
        max_attempts = cfg.max_attempts or 3 * cfg.episodes + 10
        seeds = (
            spread_seeds(env, cfg.seed, cfg.episodes)[:max_attempts]
            if cfg.layout == "spread"
            else [cfg.seed + j for j in range(max_attempts)]
        )
        meta = {**env.unwrapped.task_meta(), "source": "scripted", "expert_noise": cfg.noise, "seed": cfg.seed}
        meta["demo_layout"] = cfg.layout
        store = EpisodeStore.open_or_create(cfg.out, meta)
        expert = make_expert(env, noise=cfg.noise, seed=cfg.seed)
        recorder = EpisodeRecorder(store)
        max_attempts = min(max_attempts, len(seeds))
        added = attempts = successes = added_steps = 0
        bar = tqdm(total=cfg.episodes, desc=f"demos {cfg.task}", unit="ep", disable=not cfg.progress)
        while added < cfg.episodes and attempts < max_attempts:
            obs, info = env.reset(seed=seeds[attempts])
            expert.reset()
            recorder.start(obs, info)
            succeeded = done = False
            while not done:
                action = expert.act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                recorder.step(action, obs, reward, terminated, truncated, info)
                succeeded = succeeded or bool(info.get("success", False))
                done = terminated or truncated
            attempts += 1
            successes += succeeded
            if succeeded or cfg.keep_failures:
                added_steps += recorder.n_steps
                recorder.end()
                added += 1
                bar.update(1)
            else:
                recorder.discard()
            bar.set_postfix(success=f"{successes}/{attempts}")
        bar.close()
    finally:
        env.close()
    if added < cfg.episodes:
        raise RuntimeError(
            f"the scripted expert succeeded in {successes} of {attempts} attempts, so only {added} of "
            f"{cfg.episodes} episodes were stored in {cfg.out}; lower --noise, pass --keep-failures, or check the expert"
        )
    return DemoResult(Path(cfg.out), added, attempts, successes, added_steps, store.n_episodes)
