"""`encoder_ema`: with an averaged actor, the deployed encoder's necks are the moving average of trained ones."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from pixel_bandit import FRONT, color_image, frozen_resnet_agent

from robot_rl import keys
from robot_rl.agents import Agent, AgentConfig, make_agent


def _filled(agent, rng: np.random.Generator, n: int = 64):
    rb = agent.make_replay(4 * n, seed=0)
    for _ in range(n):
        s = rng.uniform(-0.7, 0.7, 2).astype(np.float32)
        rb.add(
            {keys.STATE: s, FRONT: color_image(s)},
            rng.uniform(-1, 1, 2).astype(np.float32),
            float(s[0] > 0),
            {keys.STATE: s, FRONT: color_image(s)},
            True,
            False,
        )
    return rb


def _necks(encoder) -> list[torch.Tensor]:
    return [p.detach().clone() for p in encoder.necks.parameters()]


def test_the_deployed_necks_follow_the_trained_ones_and_share_the_frozen_trunk():
    agent = frozen_resnet_agent(2, actor_ema=0.25, encoder_ema=True, batch_size=16)
    deployed, trained = agent.policy.encoder, agent.train_encoder
    assert trained is not deployed and trained.trunk is deployed.trunk  # one frozen trunk, never copied
    n_actor = sum(t.is_floating_point() for t in agent.policy.actor.state_dict().values())
    n_necks = sum(t.is_floating_point() for t in deployed.necks.state_dict().values())
    assert len(agent._ema_pairs[0]) == n_actor + n_necks  # the trunk is not averaged
    rb = _filled(agent, np.random.default_rng(0))
    before = _necks(deployed)
    agent.update_many(rb, 1)  # one critic step (trains the trained necks) and one actor step (averages)
    for old, averaged, new in zip(before, deployed.necks.parameters(), trained.necks.parameters()):
        torch.testing.assert_close(averaged, old + 0.25 * (new - old))
    assert any(not torch.equal(a, t) for a, t in zip(deployed.necks.parameters(), trained.necks.parameters()))
    assert all(p.grad is None for p in deployed.parameters())  # only the trained copy gets gradients
    # off (the default), without an averaged actor, or with nothing in the encoder to learn (state only): the
    # policy's encoder is the one trained, and no copy is saved
    state_only = make_agent(
        AgentConfig(actor_ema=0.25, encoder_ema=True),
        gym.spaces.Dict({keys.STATE: gym.spaces.Box(-1, 1, (3,), np.float32)}),
        gym.spaces.Box(-1, 1, (2,), np.float32),
        seed=0,
    )
    plains = [frozen_resnet_agent(2, **kw) for kw in (dict(actor_ema=0.25), dict(encoder_ema=True))] + [state_only]
    for plain in plains:
        assert plain.train_encoder is plain.policy.encoder
        assert "train_encoder" not in plain.state_dict()["modules"]


@pytest.mark.parametrize("saved_with", [True, False], ids=["same", "saved_without"])
def test_an_agent_with_averaged_necks_saves_loads_and_resumes(tmp_path, saved_with):
    rng = np.random.default_rng(1)
    agent = frozen_resnet_agent(2, actor_ema=0.25, encoder_ema=saved_with, batch_size=16)
    rb = _filled(agent, rng)
    agent.update_many(rb, 3)
    agent.save(tmp_path / "agent")
    if saved_with:
        restored = Agent.load(tmp_path / "agent")
        obs = {keys.STATE: np.array([0.3, -0.2], np.float32), FRONT: color_image(np.array([0.3, -0.2]))}
        # (within float rounding: the trunk's acting pass is built for one and not yet for the other)
        np.testing.assert_allclose(agent.policy.act(obs, True), restored.policy.act(obs, True), atol=1e-6)
        batch = rb.sample(16)
        assert agent.update(batch) == restored.update(batch)  # trained necks, optimiser and RNG all restored
        for p1, p2 in zip(agent.train_encoder.necks.parameters(), restored.train_encoder.necks.parameters()):
            assert torch.equal(p1, p2)
        return
    # a state saved without averaged necks: the trained necks start from the deployed ones, and train
    again = frozen_resnet_agent(2, actor_ema=0.25, encoder_ema=True, batch_size=16)
    again.load_state_dict(agent.state_dict())
    for p1, p2 in zip(again.train_encoder.necks.parameters(), agent.policy.encoder.necks.parameters()):
        assert torch.equal(p1, p2)
    again.update_many(rb, 1)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(again.train_encoder.necks.parameters(), agent.policy.encoder.necks.parameters())
    )
    # and back: the trained necks become the deployed ones of an agent without averaging
    plain = frozen_resnet_agent(2, actor_ema=0.25, batch_size=16)
    plain.load_state_dict(again.state_dict())
    for p1, p2 in zip(plain.policy.encoder.necks.parameters(), again.train_encoder.necks.parameters()):
        assert torch.equal(p1, p2)
