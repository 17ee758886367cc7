"""`robot-rl eval --per-episode`: one line per evaluated episode, with the sim task's goal offset at the end (where the
peg's tip ended relative to the hole's rim, the tool relative to the cube) for reading failures without a video."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from tiny_train import TINY_LEARNER_ARGS

from robot_rl.cli import main
from robot_rl.training.evaluation import EVAL_SEED_OFFSET, evaluate, format_episode
from robot_rl_sim.env import make_task_env


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_each_episode_reports_the_goal_offset_the_sim_ended_with(task):
    env = make_task_env(task, obs_mode="state", max_episode_steps=6)
    drift = np.array([0.4, -0.3, 0.2, 1.0], np.float32)  # away from the start, so the offsets differ by episode
    result = evaluate(lambda obs: drift, env, episodes=2, seed=7)
    for i, record in enumerate(result.per_episode):
        env.reset(seed=7 + i)  # the same episode again, by hand
        for _ in range(6):
            *_, info = env.step(drift)
        sim = env.unwrapped.task
        truth = (
            sim.rim_pos() - sim.tip_pos()
            if task == "peg_insert"
            else sim.cube_pos() - sim.robot.controller.tool_pose()[0]
        )
        np.testing.assert_allclose(info["goal_offset_m"], truth)
        slip = {"grasp_slip_mm": round(float(info["grasp_slip_m"]) * 1e3, 2)} if task == "peg_insert" else {}
        assert ("grasp_slip_m" in info) == (task == "peg_insert")
        assert record == {
            "seed": 7 + i,
            "success": False,
            "length": 6,
            "return": 0.0,
            "goal_offset_mm": [round(float(v) * 1e3, 2) for v in truth],
            **slip,
        }
        lateral = float(np.hypot(*truth[:2])) * 1e3
        assert f"(lateral {lateral:.1f} mm)" in format_episode(i, record)
    assert result.per_episode[0]["goal_offset_mm"] != result.per_episode[1]["goal_offset_mm"]


def _descend_onto(env, offset_x_m: float) -> dict:
    """Bring the peg 14 cm above the hole's centre + `offset_x_m`, then drive straight down; the last info."""
    task = env.unwrapped.task
    goal = task.data.mocap_pos[task._hole_mocap] + np.array([offset_x_m, 0.0, 0.14])
    for k in range(45):
        tool = task.robot.controller.tool_pose()[0]
        to_goal = np.clip((goal - tool) / 0.025, -1, 1)
        action = np.r_[to_goal, 1.0] if k < 30 else np.r_[to_goal[:2], -1.0, 1.0]
        *_, terminated, _, info = env.step(action.astype(np.float32))
        if terminated:
            break
    return info


def test_a_peg_landing_on_the_fixture_is_reported_pushed_into_the_hand():
    env = make_task_env("peg_insert", obs_mode="state")
    env.reset(seed=3)
    aligned = _descend_onto(env, 0.0)
    assert aligned["success"] and abs(aligned["grasp_slip_m"]) < 0.001
    env.reset(seed=3)
    on_wall = _descend_onto(env, 0.023)  # the tip lands on the fixture's wall, 23 mm off the hole's axis
    assert not on_wall["success"] and on_wall["grasp_slip_m"] > 0.005
    env.reset(seed=3)
    assert abs(env.unwrapped.task.grasp_slip_m()) < 0.001  # every episode starts from its own grasp
    record = {"seed": 3, "success": False, "length": 45, "return": 0.0, "grasp_slip_mm": 19.94}
    assert format_episode(0, record).endswith("; peg pushed 19.9 mm into the hand")


def test_an_env_without_a_goal_offset_reports_the_rest():
    env = gym.make("CartPole-v1")
    result = evaluate(lambda obs: 0, env, episodes=1, seed=0)
    (record,) = result.per_episode
    assert set(record) == {"seed", "success", "length", "return"} and record["success"] is None
    assert format_episode(0, record) == f"episode 0 (seed 0): ended after {record['length']} steps, return " + (
        f"{record['return']:.2f}"
    )


def test_robot_rl_eval_prints_one_line_per_episode_with_its_seed(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--task", "peg_insert", "--obs", "state", "--max-episode-steps", "10", "--steps", "30"]
    args += ["--warmup-steps", "20", "--scripted-demos", "0", "--seed", "3", *TINY_LEARNER_ARGS, "--out", str(run)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "3", "--per-episode"]) == 0
    lines = capsys.readouterr().out.splitlines()
    episodes = [line for line in lines if line.startswith("episode ")]
    assert len(episodes) == 3, lines
    for i, line in enumerate(episodes):
        seed = 3 + EVAL_SEED_OFFSET + i  # the run's evaluation seeds, as in its eval.jsonl
        pattern = rf"episode {i} \(seed {seed}\): (success|failure) after \d+ steps, return [\d.-]+; goal offset "
        pattern += (
            r"([+-][\d.]+) ([+-][\d.]+) ([+-][\d.]+) mm \(lateral ([\d.]+) mm\); peg pushed -?[\d.]+ mm into the hand"
        )
        match = re.fullmatch(pattern, line)
        assert match, line
        x, y, _, lateral = (float(v) for v in match.groups()[1:5])
        assert abs(np.hypot(x, y) - lateral) < 0.1
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert not any(line.startswith("episode ") for line in capsys.readouterr().out.splitlines())
    # --sampled: the policy's sampled actions, as in training (other end poses than the mean's), seeded: a rerun
    # gives the same episodes
    sampled = []
    for _ in range(2):
        assert main(["eval", str(run), "--episodes", "3", "--per-episode", "--sampled"]) == 0
        sampled.append([line for line in capsys.readouterr().out.splitlines() if line.startswith("episode ")])
    assert sampled[0] == sampled[1] and len(sampled[0]) == 3
    assert sampled[0] != episodes, (sampled[0], episodes)
