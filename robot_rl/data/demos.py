"""Recording scripted demonstrations of a simulated task into an episode store.

`record_scripted_demos` drives the sim task's scripted expert (`robot_rl_sim.experts`) through
gymnasium and writes each attempt with `EpisodeRecorder`. Attempt j resets the env with seed
`seed + j`, so a run is reproducible; failed attempts are discarded unless `keep_failures`.
The sim (and MuJoCo) is imported only when this runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore


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
        meta = {**env.unwrapped.task_meta(), "source": "scripted", "expert_noise": cfg.noise, "seed": cfg.seed}
        store = EpisodeStore.open_or_create(cfg.out, meta)
        expert = make_expert(env, noise=cfg.noise, seed=cfg.seed)
        recorder = EpisodeRecorder(store)
        max_attempts = cfg.max_attempts or 3 * cfg.episodes + 10
        added = attempts = successes = added_steps = 0
        bar = tqdm(total=cfg.episodes, desc=f"demos {cfg.task}", unit="ep", disable=not cfg.progress)
        while added < cfg.episodes and attempts < max_attempts:
            obs, info = env.reset(seed=cfg.seed + attempts)
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
