"""SAC/TD3 agents on state observations: save/load and resume continuity, update bookkeeping, determinism."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.agents import GRIPPER_VALUES, Agent, AgentConfig, Policy, make_agent
from robot_rl.replay import MixedSampler

OBS_SPACE = gym.spaces.Box(-1, 1, (2,), np.float32)
ACT_SPACE = gym.spaces.Box(-1, 1, (2,), np.float32)


def _tiny_agent(seed: int = 0, **overrides) -> tuple[Agent, object]:
    agent = make_agent(
        AgentConfig(hidden_dims=(32, 32), batch_size=16, **overrides),
        OBS_SPACE,
        gym.spaces.Box(-1, 1, (3,), np.float32),
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    rb = agent.make_replay(200, seed=seed)
    for _ in range(50):
        s = rng.uniform(-1, 1, 2).astype(np.float32)
        rb.add(s, rng.uniform(-1, 1, 3).astype(np.float32), float(rng.normal()), s, True, False)
    return agent, rb


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(algo="td3"),
        dict(critic_loss="hl_gauss"),
        dict(discrete_gripper=True, n_step=2),
        dict(actor_ema=0.1),
    ],
    ids=["sac", "td3", "hl_gauss", "gripper", "actor_ema"],
)
def test_save_then_load_gives_identical_actions_and_an_identical_next_update(tmp_path, overrides):
    agent, rb = _tiny_agent(**overrides)
    agent.update_many(rb, 5)
    agent.save(tmp_path / "agent")
    restored = Agent.load(tmp_path / "agent")
    assert restored.step == agent.step == 5
    obs = {keys.STATE: np.array([0.3, -0.2], np.float32)}
    np.testing.assert_array_equal(
        agent.policy.act(obs, deterministic=True), restored.policy.act(obs, deterministic=True)
    )
    batch = rb.sample(16)
    m1, m2 = agent.update(batch), restored.update(batch)
    assert m1 == m2  # same optimiser moments, temperature, targets and RNG stream
    for (name, p1), p2 in zip(agent.critic.named_parameters(), restored.critic.parameters()):
        assert torch.equal(p1, p2), name
    for p1, p2 in zip(agent.target_critic.parameters(), restored.target_critic.parameters()):
        assert torch.equal(p1, p2)


def test_policy_round_trips_through_a_directory_and_bytes(tmp_path):
    agent, rb = _tiny_agent(discrete_gripper=True)
    agent.update_many(rb, 3)
    agent.policy.save(tmp_path / "policy")
    from_dir = Policy.load(tmp_path / "policy")
    from_bytes = Policy.from_bytes(agent.policy.to_bytes())
    obs = {keys.STATE: np.array([0.1, 0.9], np.float32)}
    want = agent.policy.act(obs, deterministic=True)
    assert want.shape == (3,) and want[2] in GRIPPER_VALUES
    np.testing.assert_array_equal(from_dir.act(obs, deterministic=True), want)
    np.testing.assert_array_equal(from_bytes.act(obs, deterministic=True), want)
    with pytest.raises(ValueError, match="safetensors"):
        Policy.from_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(FileNotFoundError, match="policy.safetensors"):
        Policy.load(tmp_path / "nowhere")


def test_an_untrained_policy_is_deterministic_when_asked_and_stochastic_otherwise():
    # The networks' initial weights and act()'s noise come from torch's global generator: seeded here, the figures
    # do not depend on which tests ran before (CI once drew 20 samples whose spread in one dimension was 0.043).
    torch.manual_seed(0)
    agent, _ = _tiny_agent()
    obs = {keys.STATE: np.array([0.5, 0.5], np.float32)}
    first = agent.policy.act(obs, deterministic=True)
    assert np.all(np.abs(first) <= 1.0)
    np.testing.assert_array_equal(first, agent.policy.act(obs, deterministic=True))
    samples = np.stack([agent.policy.act(obs) for _ in range(200)])
    assert samples.std(axis=0).min() > 0.05  # initial temperature 1: exploration noise is substantial
    assert np.all(np.abs(samples) <= 1.0)


def test_update_many_steps_the_critic_n_times_and_the_actor_once():
    agent, rb = _tiny_agent()
    actor_before = [p.clone() for p in agent.policy.actor.parameters()]
    sampler = MixedSampler([(rb, 0.5), (rb, 0.5)])
    metrics = agent.update_many(sampler, 4)
    assert agent.step == 4 and "actor_loss" in metrics and "critic_loss" in metrics
    assert int(agent.actor_opt.state_dict()["state"][0]["step"]) == 1
    assert int(agent.critic_opt.state_dict()["state"][0]["step"]) == 4
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.policy.actor.parameters()))


def test_make_agent_rejects_actions_outside_minus_one_to_one_and_bad_config_values():
    with pytest.raises(ValueError, match="RescaleAction"):
        make_agent(AgentConfig(), OBS_SPACE, gym.spaces.Box(-2, 2, (2,), np.float32))
    with pytest.raises(ValueError, match="choose one of"):
        AgentConfig(algo="ppo")
    with pytest.raises(ValueError, match="critic_subsample"):
        AgentConfig(n_critics=2, critic_subsample=3)


def test_state_only_updates_are_fast_enough_for_ci():
    """A loose floor (shared, noisy 2-core machine): ~10x below what a quiet core does."""
    agent = make_agent(
        AgentConfig(batch_size=256),
        gym.spaces.Box(-1, 1, (18,), np.float32),
        gym.spaces.Box(-1, 1, (4,), np.float32),
        seed=0,
    )
    rb = agent.make_replay(2000, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        s = rng.normal(size=18).astype(np.float32)
        rb.add(s, rng.uniform(-1, 1, 4).astype(np.float32), 0.0, s, True, False)
    agent.update_many(rb, 3)
    start = time.perf_counter()
    agent.update_many(rb, 20)
    rate = 20 / (time.perf_counter() - start)
    assert rate > 5.0, f"{rate:.1f} updates/s"


def _imitation_sampler(seed: int) -> MixedSampler:
    """Online rows with random actions and demo rows that all took (0.5, -0.5, 0.5); every reward 0."""
    rng = np.random.default_rng(seed)
    online, demos = (
        make_agent(AgentConfig(hidden_dims=(32, 32)), OBS_SPACE, gym.spaces.Box(-1, 1, (3,), np.float32)).make_replay(
            200, seed=seed + i
        )
        for i in range(2)
    )
    demo_action = np.array([0.5, -0.5, 0.5], np.float32)
    for _ in range(60):
        s = rng.uniform(-1, 1, 2).astype(np.float32)
        online.add(s, rng.uniform(-1, 1, 3).astype(np.float32), 0.0, s, True, False)
        demos.add(s, demo_action, 0.0, s, True, False)
    return MixedSampler([(online, 0.5), (demos, 0.5)], demo_sources=(1,))


@pytest.mark.parametrize("bc_weight", [0.0, 1.0])
def test_the_bc_term_pulls_the_actor_to_the_demonstrated_actions_only_when_weighted(bc_weight):
    torch.manual_seed(0)
    agent = make_agent(
        AgentConfig(hidden_dims=(32, 32), batch_size=32, actor_lr=3e-3, bc_weight=bc_weight),
        OBS_SPACE,
        gym.spaces.Box(-1, 1, (3,), np.float32),
        seed=0,
    )
    sampler = _imitation_sampler(0)
    for _ in range(300):
        metrics = agent.update_many(sampler, 1)
    states = np.random.default_rng(1).uniform(-1, 1, (20, 2)).astype(np.float32)
    acts = np.stack([agent.policy.act({keys.STATE: s}, deterministic=True) for s in states])
    error = np.abs(acts - np.array([0.5, -0.5, 0.5])).max()
    if bc_weight > 0:
        assert error < 0.1 and metrics["bc_loss"] < 0.05
    else:  # the critic sees reward 0 for every action: nothing pulls the actor to the demos
        assert error > 0.3 and "bc_loss" not in metrics


def test_the_critic_ensemble_reads_features_and_action_as_separate_parts_with_the_concatenated_result():
    """The first layer multiplies each input part by its rows of the weight; only parts that need a gradient
    get one (the actor loss: the action's, not the detached features')."""
    from robot_rl.nets.mlp import EnsembleMLP

    torch.manual_seed(0)
    net = EnsembleMLP(3, 7, (16, 16), 2, layer_norm=True)
    feats, action = torch.randn(5, 4), torch.randn(5, 3, requires_grad=True)
    parts_out, cat_out = net((feats, action)), net(torch.cat([feats, action], dim=-1))
    torch.testing.assert_close(parts_out, cat_out)
    (grad,) = torch.autograd.grad(parts_out.square().sum(), [action])
    (cat_grad,) = torch.autograd.grad(cat_out.square().sum(), [action])
    torch.testing.assert_close(grad, cat_grad)
    with pytest.raises(ValueError, match="do not add up"):
        net((feats, action[:, :2]))


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_the_actors_mean_action_from_the_sampling_pass_is_its_deterministic_action(algo):
    agent, _ = _tiny_agent(algo=algo)
    actor, feats = agent.policy.actor, torch.randn(6, agent.policy.feature_dim)
    noise = torch.randn(6, agent.arm_dim) if algo == "sac" else None
    action, log_prob, mean_action = actor.forward_with_mean(feats, noise)
    torch.testing.assert_close(mean_action, actor(feats, None)[0])
    sampled, sampled_log_prob = actor(feats, noise)
    torch.testing.assert_close(action, sampled)
    assert (log_prob is None) == (algo == "td3")
    if algo == "sac":
        torch.testing.assert_close(log_prob, sampled_log_prob)
        assert not torch.allclose(action, mean_action)


def test_the_gaussian_entropy_measure_ignores_the_squashing_of_a_saturated_dim_and_holds_the_entropy_down():
    """A policy that holds one dim at +1 (its mean far into the tanh) and samples the other two: measured on the
    squashed action its entropy is below a target of -1.5, so the temperature rises and pushes the std up; measured on
    the Gaussian it is above, so the temperature falls and the excess penalty pulls the std down
    (AgentConfig.entropy_measure)."""
    temperatures, entropies = {}, {}
    for measure in ("action", "gaussian"):
        agent, rb = _tiny_agent(entropy_measure=measure, target_entropy=-1.5)
        actor = agent.policy.actor
        with torch.no_grad():  # means (0, 6, 0); log stds mapped to the middle of their range, -1.5
            actor.net[-1].weight.zero_()
            actor.net[-1].bias.zero_()
            actor.net[-1].bias[1] = 6.0
        feats = torch.zeros(4, agent.policy.encoder.out_dim)
        log_std = actor.log_std_min + 0.5 * (actor.log_std_max - actor.log_std_min)
        start = actor.gaussian_entropy(feats).detach().numpy()
        np.testing.assert_allclose(start, 3 * (log_std + 0.5 * np.log(2 * np.pi * np.e)), rtol=1e-5)
        before = agent.temperature
        for _ in range(30):
            agent.update(rb.sample(16))
        temperatures[measure] = agent.temperature / before
        entropies[measure] = float(actor.gaussian_entropy(feats).detach().mean() - start.mean())
    assert temperatures["action"] > 1.0 > temperatures["gaussian"], temperatures
    assert entropies["gaussian"] < -0.05 and entropies["gaussian"] < entropies["action"], entropies


def test_the_gaussian_entropy_bonus_moves_only_the_stds_never_the_means():
    """With entropy_measure gaussian the temperature's bonus is the Gaussian's entropy, which reaches the log-std
    outputs only: an update's gradient on the means is the same at temperature 0.01 and 100. With the squashed action's
    log-prob (entropy_measure action) the bonus also pulls the means, the harder the higher the temperature."""
    moved = {}
    for measure in ("gaussian", "action"):
        for temperature in (0.01, 100.0):
            torch.manual_seed(0)  # the same initial networks
            agent, rb = _tiny_agent(entropy_measure=measure, init_temperature=temperature)
            agent.update(rb.sample(16))  # the actor's gradients stay on its parameters after the step
            moved[measure, temperature] = agent.policy.actor.net[-1].bias.grad.detach().clone().chunk(2)
    torch.testing.assert_close(moved["gaussian", 0.01][0], moved["gaussian", 100.0][0])  # means
    assert not torch.allclose(moved["gaussian", 0.01][1], moved["gaussian", 100.0][1])  # log stds
    assert not torch.allclose(moved["action", 0.01][0], moved["action", 100.0][0])


def test_with_actor_ema_the_policy_is_the_moving_average_of_the_trained_actor():
    agent, rb = _tiny_agent(actor_ema=0.25)
    assert agent.train_actor is not agent.policy.actor
    before = [p.detach().clone() for p in agent.policy.actor.parameters()]
    agent.update_many(rb, 1)
    for old, averaged, trained in zip(before, agent.policy.actor.parameters(), agent.train_actor.parameters()):
        torch.testing.assert_close(averaged, old + 0.25 * (trained - old))  # moved a quarter of the way
    assert any(not torch.equal(a, t) for a, t in zip(agent.policy.actor.parameters(), agent.train_actor.parameters()))
    assert all(p.grad is None for p in agent.policy.actor.parameters())  # only the trained copy gets gradients
    plain, _ = _tiny_agent()
    assert plain.train_actor is plain.policy.actor and "train_actor" not in plain.state_dict()["modules"]
    with pytest.raises(ValueError, match="actor_ema"):
        AgentConfig(actor_ema=1.0)


def test_an_agent_state_saved_with_the_other_actor_ema_setting_loads():
    averaged, rb = _tiny_agent(actor_ema=0.25)
    averaged.update_many(rb, 3)
    plain = _tiny_agent()[0]
    plain.load_state_dict(averaged.state_dict())  # the trained actor becomes the deployed one
    for p1, p2 in zip(plain.policy.actor.parameters(), averaged.train_actor.parameters()):
        assert torch.equal(p1, p2)
    again = _tiny_agent(actor_ema=0.25)[0]
    again.load_state_dict(plain.state_dict())  # the trained actor starts from the deployed one
    for p1, p2, p3 in zip(
        again.train_actor.parameters(), again.policy.actor.parameters(), plain.policy.actor.parameters()
    ):
        assert torch.equal(p1, p3) and torch.equal(p2, p3)
    again.update_many(rb, 1)  # and it trains: the optimiser state fits the trained actor
    assert any(not torch.equal(a, b) for a, b in zip(again.train_actor.parameters(), plain.policy.actor.parameters()))


def test_the_gaussian_entropy_measure_caps_every_dim_at_its_share_of_the_target():
    """One dim's std at the top of its range and the others at the floor: the sum is below the target (-1.5), so a
    cap on the sum alone lets the bonus keep that dim's samples random in sign; the cap per dim (-0.5 each) pulls it
    down while the other dims may rise."""
    agent, rb = _tiny_agent(entropy_measure="gaussian", target_entropy=-1.5, actor_lr=1e-2)
    actor = agent.policy.actor
    with torch.no_grad():  # raw log stds: dim 0 up (log std 1.7 of at most 2), dims 1-2 down (-4.7)
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.zero_()
        actor.net[-1].bias[3:] = torch.tensor([1.5, -1.5, -1.5])
    feats = torch.zeros(4, agent.policy.encoder.out_dim)

    def per_dim() -> np.ndarray:
        log_std = actor._log_std(actor.net(feats).chunk(2, dim=-1)[1])
        return actor.entropy_per_dim(log_std).detach().mean(0).numpy()

    start = per_dim()
    assert start[0] > 2.5 and start.sum() < -1.5  # the sum is under the target, dim 0 far over its share
    for _ in range(40):
        agent.update(rb.sample(16))
    end = per_dim()
    assert end[0] < start[0] - 0.2, (start, end)
