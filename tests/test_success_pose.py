"""The success-pose auxiliary task: replay labels rows of successful episodes with the success pose's offset, and the
agent's head, trained with the critic, learns it from what only the image shows."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from pixel_bandit import FRONT, color_image, frozen_resnet_agent

from robot_rl import keys
from robot_rl.agents import Agent, AgentConfig
from robot_rl.replay import MixedSampler, ReplayBuffer


def _episode(poses: np.ndarray, success: bool, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    n = len(poses)
    ep = {
        keys.STATE: np.concatenate([poses, np.zeros((n, 1), np.float32)], axis=1).astype(np.float32),
        keys.ACTION: np.zeros((n, 2), np.float32),
        keys.REWARD: np.zeros(n, np.float32),
        keys.TERMINATED: np.zeros(n, bool),
        keys.TRUNCATED: np.zeros(n, bool),
    }
    ep[keys.REWARD][-1] = float(success)
    ep[keys.TERMINATED][-1] = success
    if image is not None:
        ep[FRONT] = image
    return ep


def test_replay_labels_the_rows_of_successful_episodes_only():
    space = gym.spaces.Dict({keys.STATE: gym.spaces.Box(-1, 1, (3,), np.float32)})
    rb = ReplayBuffer(space, 2, capacity=8, seed=0, pose_slice=(0, 2))
    won = np.array([[0.0, 0.0], [0.1, 0.2], [0.3, 0.5]], np.float32)
    rb.add_episode(_episode(won, success=True))
    rb.add_episode(_episode(won + 1, success=False))  # truncated: no label
    batch = rb.sample(64)
    labelled = batch.obs[keys.STATE][:, 2] == 0  # every row's third state dim is 0; tell episodes by pose
    from_won = batch.obs[keys.STATE][:, 0] < 0.5
    assert labelled.all() and from_won.any() and (~from_won).any()
    assert torch.equal(batch.has_success, from_won)
    expected = torch.tensor([0.3, 0.5]) - batch.obs[keys.STATE][:, :2]
    assert torch.allclose(batch.success_offset[from_won], expected[from_won], atol=1e-6)
    # the ring overwrites the successful episode's rows with a failed one: their labels go with them
    rb.add_episode(_episode(won + 2, success=False))
    rb.add_episode(_episode(won + 3, success=False))
    assert not rb.sample(64).has_success.any()
    with pytest.raises(ValueError, match="pose_slice"):
        ReplayBuffer(space, 2, capacity=8, pose_slice=(2, 5))
    for bad in (dict(success_pose_weight=-1.0), dict(success_pose_symlog=float("nan"))):
        with pytest.raises(ValueError, match="success_pose"):
            AgentConfig(**bad)


@pytest.mark.parametrize("symlog", [0.0, 0.05], ids=["rms", "symlog"])
def test_the_head_learns_the_success_pose_from_the_image_and_is_saved(tmp_path, symlog):
    """Two-step episodes: the arm starts at a random pose and succeeds at a goal shown only as image colour. The
    head must read the goal from the necks (the pose alone leaves the goal's variance, ~0.16 per dim, unexplained)."""
    rng = np.random.default_rng(0)
    agent = frozen_resnet_agent(3, success_pose_weight=1.0, success_pose_slice=(0, 2), success_pose_symlog=symlog)
    rb = agent.make_replay(1200, seed=0)
    goals = rng.uniform(-0.7, 0.7, (600, 2)).astype(np.float32)
    for goal in goals:
        poses = np.stack([rng.uniform(-0.7, 0.7, 2), goal]).astype(np.float32)
        rb.add_episode(_episode(poses, success=True, image=np.stack([color_image(goal)] * 2)))
    sampler = MixedSampler([(rb, 1.0)])
    for _ in range(300):
        metrics = agent.update_many(sampler, 1)
    if not symlog:
        assert metrics["success_pose_loss"] < 0.2, metrics  # scaled per dim: predicting 0 scores ~2 (two dims)

    new_goals = rng.uniform(-0.7, 0.7, (100, 2)).astype(np.float32)
    errors = {}
    for name, spread in (("far", 0.7), ("near", 0.05)):  # the start anywhere, or within 0.05 of the goal
        starts = np.clip(new_goals + rng.uniform(-spread, spread, (100, 2)), -0.7, 0.7).astype(np.float32)
        obs = {
            keys.STATE: torch.as_tensor(np.concatenate([starts, np.zeros((100, 1), np.float32)], axis=1)),
            FRONT: torch.as_tensor(np.stack([color_image(g) for g in new_goals])),
        }
        with torch.no_grad():
            predicted = agent.success_pose.predict(agent.policy.encoder(obs)).numpy()
        errors[name] = float(np.mean(np.sum((predicted - (new_goals - starts)) ** 2, axis=1)))
    # measured far 0.001 (rms) and 0.03 (symlog), near 0.0004 and 0.0009; a head blind to the image guesses the mean
    # goal, ~0.33 off either way
    assert errors["far"] < 0.15 and errors["near"] < 0.05, errors

    agent.save(tmp_path / "agent")
    loaded = Agent.load(tmp_path / "agent")
    for name, tensor in agent.success_pose.state_dict().items():
        assert torch.equal(loaded.success_pose.state_dict()[name], tensor), name
