"""`robot-rl bench sim` times real MuJoCo envs on tiny settings and prints well-formed figures; no peer needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np

from robot_rl.bench.timing import time_env_steps


class _FixedLengthEnv(gym.Env):
    """An env whose episodes last exactly `length` steps and which counts its resets."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, length: int):
        self.length, self.t, self.resets, self.steps = length, 0, 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.resets = 0, self.resets + 1
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t, self.steps = self.t + 1, self.steps + 1
        return np.zeros(1, np.float32), 0.0, False, self.t >= self.length, {}


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robot_rl", "bench", "sim", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )


def test_timed_window_pays_one_reset_per_episode_it_starts():
    env = _FixedLengthEnv(length=10)
    timing = time_env_steps(env, steps=25, warmup_steps=3, seed=0)
    assert timing.steps == 25 and timing.episodes == 3  # 25 steps of 10-step episodes start 3 episodes
    assert env.steps == 28  # warm-up steps ran but are not counted
    assert env.resets == 1 + 3  # the seeding reset, then one per timed episode (none after the last step)
    assert timing.steps_per_s == 25 / timing.elapsed_s


def test_json_has_one_line_per_obs_mode_with_our_fields_and_no_peer_fields():
    proc = _run_cli("--steps", "30", "--warmup-steps", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [r["obs_mode"] for r in rows] == ["pixels", "state"]
    for r in rows:
        assert set(r) == {"env", "obs_mode", "steps_per_s", "steps", "episodes", "cores"}
        assert r["env"] == "robot_rl/PickCube-v0" and r["steps"] == 30 and r["episodes"] == 1
        assert 0 < r["steps_per_s"] < 1e6
    assert "[ours] robot_rl/PickCube-v0 obs_mode=pixels" in proc.stderr


def test_table_names_the_env_and_the_mode_and_leaves_peer_columns_empty():
    proc = _run_cli("--steps", "20", "--warmup-steps", "1", "--obs-mode", "state")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("bench sim: env steps/s")
    (row,) = [line for line in lines if line.startswith("robot_rl/PickCube-v0")]
    fields = row.split()
    assert fields[1] == "state" and float(fields[2]) > 0 and fields[3:] == ["-", "-", "-"]
    assert not any(line.startswith("goal") for line in lines)
