"""The scripted experts solve their tasks on seeded random episodes (the 100-episode figure is in the report)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl_sim.env import make_task_env
from robot_rl_sim.experts import make_expert


def _success_rate(task: str, episodes: int, noise: float = 0.0, **kw) -> tuple[float, float]:
    env = make_task_env(task, obs_mode="state", **kw)
    expert = make_expert(env, noise=noise, seed=0)
    successes, lengths = [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=10_000 + episode)
        expert.reset()
        for step in range(1, 1000):
            action = expert.act(obs)
            assert env.action_space.contains(action)
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        successes.append(info["success"] and reward == 1.0 and terminated)
        lengths.append(step)
    return float(np.mean(successes)), float(np.mean(lengths))


def test_pick_cube_expert_lifts_the_cube_in_at_least_95_percent_of_episodes():
    rate, mean_len = _success_rate("pick_cube", 20)
    assert rate >= 0.95 and mean_len < 40, (rate, mean_len)


def test_peg_insert_expert_inserts_the_peg_in_at_least_95_percent_of_episodes():
    rate, mean_len = _success_rate("peg_insert", 20)
    assert rate >= 0.95 and mean_len < 40, (rate, mean_len)


def test_peg_insert_expert_turns_the_peg_into_a_randomly_yawed_hole():
    rate, _ = _success_rate("peg_insert", 8, use_rotation=True, randomize_yaw=True)
    assert rate >= 0.85, rate


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_noisy_expert_still_succeeds_but_acts_differently(task):
    rate, _ = _success_rate(task, 8, noise=0.1)
    assert rate >= 0.85, rate
    env = make_task_env(task)
    obs, _ = env.reset(seed=0)
    clean, noisy = make_expert(env), make_expert(env, noise=0.1, seed=1)
    assert np.abs(clean.act(obs) - noisy.act(obs)).max() > 1e-3


def test_make_expert_rejects_an_env_that_is_not_a_sim_task():
    import gymnasium as gym

    with pytest.raises(ValueError, match="make_task_env"):
        make_expert(gym.make("CartPole-v1"))
