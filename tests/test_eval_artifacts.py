"""Evaluation and its artifacts: seeded episodes on the real sim, eval.jsonl, the curve PNG, the mp4."""

from __future__ import annotations

import json

import cv2
import gymnasium as gym
import numpy as np
import pytest

from robot_rl.training import curves
from robot_rl.training.env_factory import make_env
from robot_rl.training.evaluation import evaluate, write_episodes_mp4


class _ResetsExpert(gym.Wrapper):
    """Resets the scripted expert's per-episode state whenever the env resets."""

    def __init__(self, env, expert):
        super().__init__(env)
        self.expert = expert

    def reset(self, **kwargs):
        self.expert.reset()
        return self.env.reset(**kwargs)


def test_the_scripted_expert_evaluates_near_one_and_zero_actions_at_zero_on_pick_cube():
    from robot_rl_sim.experts import make_expert

    base = make_env("robot_rl/PickCube-v0", "state", render=True)
    expert = make_expert(base)
    env = _ResetsExpert(base, expert)
    good = evaluate(lambda obs: np.asarray(expert.act(obs), np.float32), env, episodes=5, seed=100, video_episodes=1)
    idle = evaluate(lambda obs: np.zeros(env.action_space.shape, np.float32), env, episodes=3, seed=100)
    env.close()
    assert good.success_rate >= 0.8 and good.return_mean > 0.5
    assert idle.success_rate == 0.0 and idle.return_mean == 0.0
    assert idle.length_mean == 100  # the time limit of pick_cube
    assert len(good.frames) == 1 and good.frames[0][0].shape == (256, 256, 3) and good.frames[0][0].dtype == np.uint8
    assert 2 <= len(good.frames[0]) <= 101  # the reset frame + one per step


def test_evaluation_is_reproducible_with_the_same_seeds():
    env = make_env("Pendulum-v1")
    act = lambda obs: np.tanh(obs["state"][:1]).astype(np.float32)  # noqa: E731
    a = evaluate(act, env, episodes=2, seed=3)
    b = evaluate(act, env, episodes=2, seed=3)
    c = evaluate(act, env, episodes=2, seed=4)
    assert a.return_mean == b.return_mean != c.return_mean
    assert a.success_rate is None  # Pendulum reports no success
    assert "success_rate" not in a.metrics()


def test_a_gymnasium_env_with_other_action_bounds_is_rescaled_to_unit_actions():
    env = make_env("Pendulum-v1")  # torque in [-2, 2]
    assert (env.action_space.low[0], env.action_space.high[0]) == (-1.0, 1.0)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state"} and obs["state"].shape == (3,)
    with pytest.raises(ValueError, match="only continuous Box actions"):
        make_env("CartPole-v1")


def test_eval_log_appends_lines_and_the_curve_is_drawn(tmp_path):
    for step, sr in ((0, 0.0), (1000, 0.4), (2000, 0.9)):
        curves.append_eval(tmp_path, {"env_steps": step, "success_rate": sr, "return_mean": sr, "return_std": 0.1})
    lines = (tmp_path / "eval.jsonl").read_text().splitlines()
    assert [json.loads(x)["success_rate"] for x in lines] == [0.0, 0.4, 0.9]
    curves.plot_curve(curves.read_evals(tmp_path), tmp_path / "curve.png", "test")
    img = cv2.imread(str(tmp_path / "curve.png"))
    assert img is not None and img.shape[1] > img.shape[0] > 300  # two panels side by side
    curves.truncate_evals(tmp_path, 1000)
    assert [r["env_steps"] for r in curves.read_evals(tmp_path)] == [0, 1000]
    with pytest.raises(ValueError, match="needs 'env_steps'"):
        curves.append_eval(tmp_path, {"success_rate": 1.0})


def test_episodes_are_written_to_one_mp4_with_a_gap_frame_between_them(tmp_path):
    rng = np.random.default_rng(0)
    eps = [[rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(n)] for n in (5, 7)]
    path = write_episodes_mp4(eps, tmp_path / "v" / "eval_0.mp4", fps=10)
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert n == 5 + 1 + 7 + 1 and ok and frame.shape == (64, 80, 3)
    with pytest.raises(ValueError, match="no frames to write"):
        write_episodes_mp4([], tmp_path / "empty.mp4", fps=10)
