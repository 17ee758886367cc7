"""SAC/TD3 variants learn: a contextual bandit (every variant) and a sparse multi-step reach (SAC, n-step)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.agents import GRIPPER_VALUES, Agent, AgentConfig, Policy, make_agent

OBS_SPACE = gym.spaces.Box(-1, 1, (2,), np.float32)
ACT_SPACE = gym.spaces.Box(-1, 1, (2,), np.float32)
SMALL = dict(hidden_dims=(64, 64), batch_size=256, actor_lr=1e-3, critic_lr=1e-3, temp_lr=1e-3)  # toy tasks: fast


def _bandit_replay(agent: Agent, n: int, rng: np.random.Generator, gripper: bool = False):
    """One-step contextual bandit: obs s ~ U[-0.7, 0.7]^2, reward 1 - |a - s|^2 (- |grip - 1| with a gripper), episode ends.

    Filled with uniformly random actions; the best arm action is a = s (reward 1).
    """
    rb = agent.make_replay(capacity=2 * n + 2, seed=0)
    for _ in range(n):
        s = rng.uniform(-0.7, 0.7, 2).astype(np.float32)
        arm = rng.uniform(-1, 1, 2).astype(np.float32)
        reward = 1.0 - float(np.sum((arm - s) ** 2))
        action = arm
        if gripper:
            grip = rng.choice(GRIPPER_VALUES)
            reward -= abs(grip - 1.0)
            action = np.append(arm, np.float32(grip)).astype(np.float32)
        rb.add(s, action, reward, s, terminated=True, truncated=False)
    return rb


def _bandit_error(policy: Policy, rng: np.random.Generator) -> float:
    """Mean |a - s|^2 of the deterministic policy over 200 states (random actions: ~1, zero action: 0.33)."""
    states = rng.uniform(-0.7, 0.7, (200, 2)).astype(np.float32)
    actions = policy.act_batch({keys.STATE: torch.as_tensor(states)}, deterministic=True).numpy()
    return float(np.mean(np.sum((actions[:, :2] - states) ** 2, axis=1)))


@pytest.mark.parametrize(
    "overrides",
    [
        dict(algo="sac"),
        dict(algo="sac", critic_loss="hl_gauss", hl_gauss_range=(-4.0, 1.5), hl_gauss_bins=41),
        dict(algo="td3", actor_update_every=2),
        dict(algo="sac", n_critics=4, critic_subsample=2, discrete_gripper=True),
    ],
    ids=["sac", "sac_hl_gauss", "td3", "sac_ensemble4_gripper"],
)
def test_agent_solves_a_contextual_bandit(overrides):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gripper = overrides.get("discrete_gripper", False)
    act_space = gym.spaces.Box(-1, 1, (3 if gripper else 2,), np.float32)
    agent = make_agent(AgentConfig(**SMALL, **overrides), OBS_SPACE, act_space, seed=0)
    rb = _bandit_replay(agent, 2000, rng, gripper)
    before = _bandit_error(agent.policy, rng)
    for _ in range(400):
        metrics = agent.update_many(rb, 1)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    after = _bandit_error(agent.policy, rng)
    assert after < 0.05, f"mean squared action error {after:.3f} (before training {before:.3f})"
    if gripper:  # the grasp critic learned that +1 is the rewarded gripper value
        actions = agent.policy.act_batch({keys.STATE: torch.zeros(5, 2)}, deterministic=True)
        assert torch.all(actions[:, 2] == 1.0)


def _point_mass_step(s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """2-d point mass: moves 0.25 a per step; reward 1 and episode end on reaching |s| < 0.2."""
    nxt = np.clip(s + 0.25 * a, -1, 1).astype(np.float32)
    done = bool(np.linalg.norm(nxt) < 0.2)
    return nxt, float(done), done


def test_sac_with_n_step_returns_learns_a_sparse_multi_step_reach_online():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    agent = make_agent(AgentConfig(**SMALL, n_step=3, gamma=0.9), OBS_SPACE, ACT_SPACE, seed=0)
    rb = agent.make_replay(capacity=20_000, seed=0)
    s, t = rng.uniform(-1, 1, 2).astype(np.float32), 0
    for step in range(800):  # 400 random steps, then the policy; updates from step 200 at UTD 1
        a = rng.uniform(-1, 1, 2).astype(np.float32) if step < 400 else agent.policy.act({keys.STATE: s})
        nxt, r, done = _point_mass_step(s, a)
        t += 1
        rb.add(s, a, r, nxt, terminated=done, truncated=t == 20 and not done)
        s = nxt
        if done or t == 20:
            s, t = rng.uniform(-1, 1, 2).astype(np.float32), 0
        if step >= 200:
            agent.update_many(rb, 1)
    successes = 0
    for _ in range(50):
        s = rng.uniform(-1, 1, 2).astype(np.float32)
        for _ in range(12):  # 12 steps of 0.25 cover the farthest corner (distance 1.41) with margin
            s, _, done = _point_mass_step(s, agent.policy.act({keys.STATE: s}, deterministic=True))
            if done:
                successes += 1
                break
    assert successes >= 45, f"reached the goal in {successes}/50 episodes (the untrained policy: ~3/50)"
