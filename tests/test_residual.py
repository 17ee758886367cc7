"""Residual RL: the untrained residual is exactly the base, the critic-only phase, replay's next base action,
persistence, and `robot-rl train --base-policy` recording base actions and starting at the base's success."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from tiny_train import TINY_LEARNER_ARGS

from robot_rl import keys
from robot_rl.agents import AgentConfig, Policy
from robot_rl.agents.residual import ResidualAgent, ResidualConfig, ResidualPolicy, make_residual_agent
from robot_rl.bc import BCTrainConfig, load_base_policy, train_bc
from robot_rl.bc.config import BCPolicyConfig
from robot_rl.bc.train import evaluate_base
from robot_rl.cli import main
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.checkpoint import find_checkpoint
from robot_rl.replay import MixedSampler

STATE_SPACE = gym.spaces.Box(-1, 1, (5,), np.float32)
PIXEL_SPACE = gym.spaces.Dict(
    {
        keys.STATE: gym.spaces.Box(-1, 1, (3,), np.float32),
        keys.image_key("front"): gym.spaces.Box(0, 255, (32, 32, 3), np.uint8),
    }
)
ACTIONS = gym.spaces.Box(-1, 1, (4,), np.float32)


def _agent(obs_space=STATE_SPACE, critic_only_steps: int = 0, **overrides) -> ResidualAgent:
    cfg = AgentConfig(**{"hidden_dims": (32, 32), "batch_size": 16, **overrides})
    return make_residual_agent(
        cfg, ResidualConfig(residual_scale=0.3, critic_only_steps=critic_only_steps), obs_space, ACTIONS, seed=0
    )


def _obs(space, rng) -> dict[str, np.ndarray]:
    if isinstance(space, gym.spaces.Box):
        return {keys.STATE: rng.uniform(-1, 1, space.shape).astype(np.float32)}
    return {
        k: (
            rng.integers(0, 255, s.shape, dtype=np.uint8)
            if s.dtype == np.uint8
            else rng.uniform(-1, 1, s.shape).astype(np.float32)
        )
        for k, s in space.spaces.items()
    }


def _filled_replay(agent: ResidualAgent, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    rb = agent.make_replay(200, seed=seed)
    for _ in range(n):
        s = rng.uniform(-1, 1, 5).astype(np.float32)
        rb.add(
            s,
            rng.uniform(-1, 1, 4).astype(np.float32),
            float(rng.random() < 0.3),
            s,
            True,
            False,
            base_action=rng.uniform(-1, 1, 4).astype(np.float32),
        )
    return rb


@pytest.mark.parametrize(
    "algo,space", [("sac", STATE_SPACE), ("td3", STATE_SPACE), ("sac", PIXEL_SPACE)], ids=["sac", "td3", "sac-pixels"]
)
def test_an_untrained_residual_agent_acts_exactly_as_its_base_and_explores_within_the_residual_bound(algo, space):
    agent = _agent(space, algo=algo, encoder="conv" if space is PIXEL_SPACE else "none")
    rng = np.random.default_rng(1)
    for _ in range(20):
        obs, base = _obs(space, rng), rng.uniform(-1, 1, 4).astype(np.float32)
        np.testing.assert_array_equal(agent.policy.act(obs, deterministic=True, base_action=base), base)
        explored = agent.policy.act(obs, deterministic=False, base_action=base)
        assert np.all(np.abs(explored - base) <= (0.3 if algo == "sac" else 0.1 * 6) + 1e-6)
        assert not np.array_equal(explored, base)
    with pytest.raises(ValueError, match="needs the base policy's action"):
        agent.policy.act(_obs(space, rng))


def test_the_actor_stays_untouched_for_the_critic_only_updates_then_trains():
    agent = _agent(critic_only_steps=4)
    rb = _filled_replay(agent)
    actor0 = [p.detach().clone() for p in agent.policy.actor.parameters()]
    critic0 = [p.detach().clone() for p in agent.critic.parameters()]
    for _ in range(4):
        metrics = agent.update_many(rb, 1)
        assert "actor_loss" not in metrics
    assert all(torch.equal(a, b) for a, b in zip(actor0, agent.policy.actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic0, agent.critic.parameters()))
    assert "actor_loss" in agent.update_many(rb, 1)
    assert not all(torch.equal(a, b) for a, b in zip(actor0, agent.policy.actor.parameters()))


@pytest.mark.parametrize("bc_weight", [0.0, 1.0])
def test_the_residual_bc_term_pulls_base_plus_residual_to_the_demonstrated_action_only_when_weighted(bc_weight):
    """Demo rows took base + delta (inside the residual's bound); every reward is 0, so only the BC term can
    teach the residual delta. It acts on the total action, and not before the actor trains."""
    torch.manual_seed(0)
    agent = _agent(critic_only_steps=5, bc_weight=bc_weight, actor_lr=3e-3, batch_size=32)
    delta = np.array([0.2, -0.2, 0.2, -0.2], np.float32)
    rng = np.random.default_rng(0)
    online, demos = agent.make_replay(200, seed=1), agent.make_replay(200, seed=2)
    for _ in range(60):
        s = rng.uniform(-1, 1, 5).astype(np.float32)
        base = rng.uniform(-0.7, 0.7, 4).astype(np.float32)
        online.add(s, rng.uniform(-1, 1, 4).astype(np.float32), 0.0, s, True, False, base_action=base)
        demos.add(s, base + delta, 0.0, s, True, False, base_action=base)
    sampler = MixedSampler([(online, 0.5), (demos, 0.5)], demo_sources=(1,))
    for _ in range(5):  # critic-only: the agent is still exactly its base
        assert "bc_loss" not in agent.update_many(sampler, 1)
    for _ in range(300):
        metrics = agent.update_many(sampler, 1)
    test = np.random.default_rng(1)
    states, bases = test.uniform(-1, 1, (20, 5)).astype(np.float32), test.uniform(-0.7, 0.7, (20, 4)).astype(np.float32)
    got = np.stack(
        [agent.policy.act({keys.STATE: s}, deterministic=True, base_action=b) for s, b in zip(states, bases)]
    )
    error = np.abs(got - bases - delta).max()
    if bc_weight > 0:
        assert error < 0.08 and metrics["bc_loss"] < 0.01, (error, metrics["bc_loss"])
    else:
        assert error > 0.1 and "bc_loss" not in metrics, error


def test_replay_gives_each_transition_the_base_action_stored_with_its_next_observation():
    agent = _agent(n_step=2)
    rb = agent.make_replay(100, seed=0)
    t = np.arange(7, dtype=np.float32)
    rb.add_episode(
        {
            keys.STATE: np.stack([t / 10] * 5, axis=1),
            keys.ACTION: np.zeros((7, 4), np.float32),
            keys.BASE_ACTION: np.stack([t] * 4, axis=1),
            keys.REWARD: np.zeros(7, np.float32),
            keys.TERMINATED: np.zeros(7, bool),
            keys.TRUNCATED: np.eye(7, dtype=bool)[-1],
        }
    )
    batch = rb.sample(64)
    step, next_step = batch.obs[keys.STATE][:, 0] * 10, batch.next_obs[keys.STATE][:, 0] * 10
    torch.testing.assert_close(batch.base_action[:, 0], step)
    torch.testing.assert_close(batch.next_base_action[:, 0], next_step)
    torch.testing.assert_close(next_step, torch.clamp(step + 2, max=6))  # 2-step: two rows on, the last at the end


def test_residual_agent_and_policy_round_trip_and_a_plain_policy_is_refused(tmp_path):
    agent = _agent(critic_only_steps=1)
    rb = _filled_replay(agent)
    agent.update_many(rb, 3)
    agent.save(tmp_path / "agent")
    restored = ResidualAgent.load(tmp_path / "agent")
    assert restored.residual == agent.residual and restored.step == 3
    obs, base = {keys.STATE: np.full(5, 0.2, np.float32)}, np.array([0.5, -0.5, 0.9, -1.0], np.float32)
    want = agent.policy.act(obs, deterministic=True, base_action=base)
    assert not np.array_equal(want, base)  # the actor has moved off the base
    np.testing.assert_array_equal(restored.policy.act(obs, deterministic=True, base_action=base), want)
    np.testing.assert_array_equal(ResidualPolicy.load(tmp_path / "agent" / "policy").act(obs, True, base), want)
    np.testing.assert_array_equal(ResidualPolicy.from_bytes(agent.policy.to_bytes()).act(obs, True, base), want)
    batch = rb.sample(16)
    assert agent.update(batch) == restored.update(batch)
    with pytest.raises(ValueError, match="not a robot_rl policy"):
        Policy.load(tmp_path / "agent" / "policy")
    with pytest.raises(ValueError, match="residual_scale must be in"):
        ResidualConfig(residual_scale=0.0)


def test_train_with_a_base_policy_records_its_actions_and_starts_at_exactly_the_bases_success(tmp_path):
    demos, bc, out = tmp_path / "demos", tmp_path / "bc", tmp_path / "run"
    record_scripted_demos(
        DemoConfig(task="pick_cube", episodes=3, out=demos, obs_mode="state", noise=0.1, progress=False)
    )
    train_bc(
        BCTrainConfig(
            demos=str(demos),
            out=str(bc),
            steps=300,
            batch_size=64,
            eval_episodes=0,
            progress_bar=False,
            policy=BCPolicyConfig(hidden_dims=(64, 64)),
        )
    )
    base_eval = evaluate_base(load_base_policy(bc), "pick_cube", "state", episodes=3, max_episode_steps=40)
    rc = main(
        [
            "train",
            "--task",
            "pick_cube",
            "--obs",
            "state",
            "--max-episode-steps",
            "40",
            "--demos",
            str(demos),
            "--base-policy",
            str(bc),
            "--residual-scale",
            "0.2",
            "--critic-only-steps",
            "20",
            "--steps",
            "100",
            "--warmup-steps",
            "40",
            *TINY_LEARNER_ARGS,
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    first_eval = json.loads((out / "eval.jsonl").read_text().splitlines()[0])
    assert first_eval["env_steps"] == 0
    assert (first_eval["return_mean"], first_eval["length_mean"]) == (base_eval.return_mean, base_eval.length_mean)

    store = EpisodeStore.open(out / "episodes")
    base = load_base_policy(bc)
    steps_seen = 0
    for ep in store.iter_episodes():
        base.reset()  # the base again along the recorded observations gives the recorded base actions
        want = np.stack([base.act({keys.STATE: s}) for s in ep[keys.STATE]])
        np.testing.assert_array_equal(ep[keys.BASE_ACTION], want)
        gap = np.abs(ep[keys.ACTION] - want)
        n = len(gap)
        warm = max(0, min(n, 40 - steps_seen))
        if warm:  # warm-up: base + N(0, 0.1), clipped
            assert 0.02 < gap[:warm].mean() < 0.2
        assert np.all(gap[warm:] <= 0.2 + 1e-6)  # then within the residual's bound
        steps_seen += n
    assert steps_seen >= 100
    assert main(["eval", str(out), "--episodes", "2"]) == 0  # `robot-rl eval` runs the residual on its base
    n_before, updates_before = store.n_episodes, ResidualAgent.load(find_checkpoint(out) / "agent").step
    assert main(["train", "--resume", str(out), "--steps", "140"]) == 0  # resumes the residual agent
    resumed = ResidualAgent.load(find_checkpoint(out) / "agent")
    assert resumed.step > updates_before and EpisodeStore.open(out / "episodes").n_episodes > n_before


def test_train_refuses_a_base_policy_of_another_layout_in_one_line(tmp_path, capsys):
    Policy(AgentConfig(hidden_dims=(32, 32)), {keys.STATE: [5]}, 4).save(tmp_path / "base")  # pick_cube: 28 dims
    capsys.readouterr()
    rc = main(
        [
            "train",
            "--task",
            "pick_cube",
            "--base-policy",
            str(tmp_path / "base"),
            "--scripted-demos",
            "0",
            "--steps",
            "10",
            "--no-wandb",
            "--no-progress-bar",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("robot-rl: error: the base policy"), err
    assert "reads 'state' of shape [5] but the env gives [28]" in err[0]
    assert not (tmp_path / "run" / "checkpoints").exists()
