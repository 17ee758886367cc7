"""Scripted demos with their goals spread over the task's range (`--layout spread`, `robot-rl train --demo-layout
spread`): farthest-point sampling over a block of candidate reset seeds of their own per seed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from robot_rl.cli import main
from robot_rl.data.demos import DemoConfig, record_scripted_demos, spread_seeds
from robot_rl.data.store import EpisodeStore
from robot_rl_sim.env import make_task_env


def _goals(env, seeds) -> np.ndarray:
    points = []
    for s in seeds:
        env.reset(seed=s)
        points.append(env.unwrapped.task.goal_pos_m()[:2])
    return np.array(points)


def _min_gap(points: np.ndarray) -> float:
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(points, 2))


def test_spread_goals_cover_the_range_where_seeds_in_a_row_leave_gaps():
    env = make_task_env("peg_insert", obs_mode="state")
    task = env.unwrapped.task
    (x0, x1), (y0, y1) = task.hole_x_range_m, task.hole_y_range_m
    blocks = []
    for seed in (0, 1, 2):
        seeds = spread_seeds(env, seed, 20)[:20]
        blocks.append(set(seeds))
        spread, in_a_row = _goals(env, seeds), _goals(env, range(seed, seed + 20))
        cells = {(min(int(3 * (x - x0) / (x1 - x0)), 2), min(int(3 * (y - y0) / (y1 - y0)), 2)) for x, y in spread}
        assert len(cells) == 9, cells  # every third of x by every third of y holds a goal
        assert _min_gap(spread) > 1.5 * _min_gap(in_a_row)
    assert not (blocks[0] & blocks[1] or blocks[1] & blocks[2])  # seeds share no demo


def test_recorded_spread_demos_are_the_chosen_episodes(tmp_path):
    out = tmp_path / "demos"
    cfg = DemoConfig(task="pick_cube", episodes=3, out=out, obs_mode="state", seed=4, progress=False, layout="spread")
    result = record_scripted_demos(cfg)
    assert result.added == 3 and result.attempts == 3
    env = make_task_env("pick_cube", obs_mode="state")
    store = EpisodeStore.open(out)
    assert store.meta["demo_layout"] == "spread"
    for i, seed in enumerate(spread_seeds(env, 4, 3)[:3]):
        first, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(store.get_episode(i)["state"][0], first)
    with pytest.raises(ValueError, match="layout='grid'; choose one of"):
        DemoConfig(task="pick_cube", episodes=1, out=out, layout="grid")


def test_the_cli_records_spread_demos(tmp_path):
    out = tmp_path / "cli_demos"
    args = ["demos", "record", "--task", "peg_insert", "--scripted", "--episodes", "2", "--layout", "spread"]
    assert main([*args, "--seed", "1", "--out", str(out), "--no-progress"]) == 0
    assert EpisodeStore.open(out).n_episodes == 2


def test_train_records_its_scripted_demos_with_the_noise_asked_for(tmp_path):
    from robot_rl.training.config import TrainConfig
    from robot_rl.training.run_setup import make_demo_store

    noisy, quiet = (
        make_demo_store(
            TrainConfig(task="peg_insert", scripted_demos=3, demo_noise=noise, progress_bar=False),
            "robot_rl/PegInsert-v0",
            tmp_path / name,
        )
        for name, noise in (("noisy", 0.3), ("quiet", 0.0))
    )
    assert noisy.meta["expert_noise"] == 0.3 and quiet.meta["expert_noise"] == 0.0
    # the expert corrects what the noise moves: the same goals take it more steps
    assert noisy.n_steps > quiet.n_steps
    with pytest.raises(ValueError, match="demo_noise must be >= 0"):
        TrainConfig(task="peg_insert", demo_noise=-0.1)
