"""Recording labelled data for a reward classifier in simulation: successes and failures, kept running past success.

`robot-rl demos record` stops each episode at success (the env terminates), so its stores hold no frame
*showing* success (see `robot_rl.reward.labels`). Here the env runs with `terminate_on_success=False` for
`episode_steps` steps, so a successful episode goes on showing the solved task, and failing behaviours
give the negatives a classifier must reject:

- expert:   the scripted expert; solves pick_cube in ~17 steps and holds the cube up for the rest.
- no_grasp: the expert with the gripper kept open: the arm goes down and comes back up without the cube
            (a classifier keyed on the arm's height alone fails on these).
- low_lift: the expert lifting the cube only `low_lift_m` (below the task's success height) and holding it
            there: grasped and lifted, yet not a success (the hard negatives near the decision boundary).
- drop:     the expert, which lets go `drop_after` steps after success: positives, then the cube falls.
- random:   smoothed random actions.

Per-step `success` comes from the simulation's ground truth (info["success"]), written by `EpisodeRecorder`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.teleop.state_experts import PickCubePhases

BEHAVIOURS = ("expert", "no_grasp", "low_lift", "drop", "random")


@dataclass(frozen=True)
class CollectConfig:
    task: str  # sim task name, e.g. "pick_cube"
    out: Path  # episode store directory (created, or appended to)
    episodes: int = 20  # episodes to record, behaviours taken in turn from `mix`
    mix: tuple[str, ...] = ("expert", "low_lift", "expert", "no_grasp", "drop", "random")  # episode j: mix[j % len]
    episode_steps: int = 40  # steps per episode (the env does not terminate on success)
    drop_after: int = 6  # drop: steps after the first success before the gripper opens
    low_lift_m: float = 0.025  # low_lift: height of the cube's bottom above the table to hold it at (pick_cube)
    noise: float = 0.1  # expert action noise
    seed: int = 0  # episode j resets the env with seed + j
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras to render
    image_size: int = 128  # camera image side in pixels
    progress: bool = True  # show a progress bar
    extra_meta: dict = field(default_factory=dict)  # merged into the store's metadata


def _behaviour_action(
    behaviour: str, expert, obs, state: dict, rng: np.random.Generator, action_dim: int
) -> np.ndarray:
    if behaviour == "random":
        state["a"] = 0.7 * state.get("a", np.zeros(action_dim)) + 0.3 * rng.uniform(-1, 1, action_dim)
        return np.clip(state["a"] * 2.0, -1, 1).astype(np.float32)
    action = expert.act(obs)
    if behaviour == "no_grasp":
        action[-1] = -1.0
    elif behaviour == "drop" and state.get("since_success", -1) >= 0:
        if state["since_success"] >= state["drop_after"]:
            action[-1] = -1.0
    return action


def collect_reward_data(cfg: CollectConfig) -> dict:
    """Record `cfg.episodes` episodes into the store at `cfg.out`; returns counts (episodes, steps, positives)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    from robot_rl.envs import env_id_for_task
    from robot_rl_sim.experts import make_expert

    unknown = [b for b in cfg.mix if b not in BEHAVIOURS]
    if unknown or not cfg.mix:
        raise ValueError(f"mix {cfg.mix!r}: choose behaviours from {BEHAVIOURS}")
    env = gym.make(
        env_id_for_task(cfg.task),
        obs_mode="pixels",
        terminate_on_success=False,
        max_episode_steps=cfg.episode_steps,
        cameras=tuple(cfg.cameras),
        image_size=cfg.image_size,
    )
    rng = np.random.default_rng(cfg.seed)
    counts = {"episodes": 0, "steps": 0, "success_steps": 0, "by_behaviour": {}}
    try:
        meta = {**env.unwrapped.task_meta(), "source": "reward_collect", "reward_mix": list(cfg.mix), **cfg.extra_meta}
        store = EpisodeStore.open_or_create(cfg.out, meta)
        expert = make_expert(env, noise=cfg.noise, seed=cfg.seed)
        recorder = EpisodeRecorder(store)
        action_dim = env.action_space.shape[0]
        for j in tqdm(range(cfg.episodes), desc=f"reward data {cfg.task}", unit="ep", disable=not cfg.progress):
            behaviour = cfg.mix[j % len(cfg.mix)]
            obs, info = env.reset(seed=cfg.seed + store.n_episodes)
            expert.reset()
            if cfg.task == "pick_cube":  # tool height = cube bottom + half a cube (grasp at its centre)
                low = behaviour == "low_lift"
                expert.phases.lift_goal_m = (
                    cfg.low_lift_m + env.unwrapped.task.cube_half_m if low else PickCubePhases.lift_goal_m
                )
            recorder.start(obs, info)
            state = {"drop_after": cfg.drop_after, "since_success": -1}
            done = False
            while not done:
                action = _behaviour_action(behaviour, expert, obs, state, rng, action_dim)
                obs, reward, terminated, truncated, info = env.step(action)
                recorder.step(action, obs, reward, terminated, truncated, info)
                if info.get("success") or state["since_success"] >= 0:
                    state["since_success"] += 1
                counts["success_steps"] += bool(info.get("success"))
                done = terminated or truncated
            counts["steps"] += recorder.n_steps
            recorder.end()
            counts["episodes"] += 1
            counts["by_behaviour"][behaviour] = counts["by_behaviour"].get(behaviour, 0) + 1
    finally:
        env.close()
    counts["store_episodes"] = store.n_episodes
    return counts
