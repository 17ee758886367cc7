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
        step = 0
        for _ in range(1, 1000):
            step += 1  # the episode length, read after the loop
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


def _drive_until(task: str, seed: int, done) -> tuple:
    """Run the expert from reset until `done(env.unwrapped.task)`; returns (env, obs). The operator's expert is a
    fresh one that meets the episode in that state (the policy got it there)."""
    env = make_task_env(task, obs_mode="state")
    obs, _ = env.reset(seed=seed)
    driver = make_expert(env)
    driver.reset()
    for _ in range(60):
        obs, _, terminated, truncated, _ = env.step(driver.act(obs))
        if done(env.unwrapped.task):
            return env, obs
        assert not (terminated or truncated)
    raise AssertionError(f"{task}: the state was never reached")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_expert_taking_over_a_half_inserted_peg_pushes_it_home_instead_of_pulling_it_out(seed):
    env, obs = _drive_until("peg_insert", seed, lambda t: t.tip_pos()[2] < t.rim_pos()[2] - 0.008)
    task, operator = env.unwrapped.task, make_expert(env)
    operator.reset()  # as when the operator takes over mid-episode
    lowest_m = task.tip_pos()[2]
    for _ in range(20):
        action = operator.act(obs)
        assert action[2] <= 0.0, f"the expert pulls the peg up: {action}"
        obs, reward, terminated, _, info = env.step(action)
        lowest_m = min(lowest_m, task.tip_pos()[2])
        if terminated:
            break
    assert info["success"], "the half-inserted peg was not pushed home"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_expert_taking_over_a_grasped_cube_lifts_it_and_never_opens_the_gripper(seed):
    env, obs = _drive_until("pick_cube", seed, lambda t: t.is_grasped() and t.lift_m() > 0.01)
    operator = make_expert(env)
    operator.reset()
    for _ in range(40):
        action = operator.act(obs)
        assert action[-1] > 0.0, f"the expert opens the gripper on a held cube: {action}"
        obs, reward, terminated, _, info = env.step(action)
        if terminated:
            break
    assert info["success"], "the held cube was not lifted to the goal"
