"""Generative bases under RL: a residual on a flow base's chunks (ResFiT), and noise-space steering (DSRL).

Real small flow bases and agents, the real acting core, and `robot-rl train` / `robot-rl eval` on the real sim.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from tiny_train import TINY_LEARNER_ARGS

from robot_rl import keys
from robot_rl.acting.core import POLICY, WARMUP, Acting
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.residual import ResidualConfig, make_residual_agent
from robot_rl.bc import BCPolicyConfig, FlowBCPolicy, load_base_policy
from robot_rl.bc.base import BasePolicyError, CallablePolicy
from robot_rl.bc.steering import NoiseSteering, latent_episode, zero_last_layer
from robot_rl.bc.train import evaluate_base
from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.checkpoint import find_checkpoint

K, A, D = 3, 4, 5  # chunk size, action dims, state dims
STATE_SPACE = gym.spaces.Box(-1, 1, (D,), np.float32)
ACTIONS = gym.spaces.Box(-1, 1, (A,), np.float32)


def _flow(seed: int = 0, obs_dim: int = D, **cfg) -> FlowBCPolicy:
    """An untrained flow base (random weights act as a fixed, non-trivial map from (obs, noise) to chunks)."""
    torch.manual_seed(seed)
    cfg = {"chunk_size": K, "hidden_dims": (32, 32), "flow_steps": 4, **cfg}
    return FlowBCPolicy(BCPolicyConfig(kind="flow", **cfg), {keys.STATE: [obs_dim]}, A).eval()


def _obs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {keys.STATE: rng.uniform(-1, 1, D).astype(np.float32)}


def test_a_residual_on_a_flow_base_acts_per_step_on_the_chunk_step_being_executed_and_reads_that_action():
    base = _flow(execution="replay", flow_noise_scale=0.0)  # chunks replayed open loop: steps 0-2 of one chunk
    agent = make_residual_agent(AgentConfig(hidden_dims=(32, 32)), ResidualConfig(0.3), STATE_SPACE, ACTIONS, seed=0)
    acting = Acting(A, policy=agent.policy, base=base, deterministic=True)
    rng = np.random.default_rng(0)
    acting.reset()
    for t in range(2 * K):
        obs = _obs(rng)
        if t % K == 0:
            chunk = base.predict_chunk(obs)  # what the base predicts on the step a chunk starts
        choice = acting.choose(obs, warmup=False)
        np.testing.assert_allclose(choice.base_action, chunk[t % K], atol=1e-6)  # the step being executed
        np.testing.assert_array_equal(choice.action, choice.base_action)  # an untrained residual adds nothing
    with torch.no_grad():  # a trained residual: its correction depends on the base action it reads
        agent.policy.actor.net[-1].weight.normal_(0.0, 0.5)
    obs = _obs(rng)
    a, b = np.full(A, -0.5, np.float32), np.full(A, 0.5, np.float32)
    corr_a = agent.policy.act(obs, deterministic=True, base_action=a) - a
    corr_b = agent.policy.act(obs, deterministic=True, base_action=b) - b
    assert np.abs(corr_a - corr_b).max() > 1e-3 and np.abs(corr_a).max() <= 0.3 + 1e-6


def test_every_steered_action_is_the_flow_bases_chunks_from_the_bounded_latent_noise_ensembled_as_it_does():
    base = _flow(ensemble_decay=0.3)
    steering = NoiseSteering(base, noise_bound=1.5)
    assert (steering.latent_dim, steering.action_dim) == (K * A, A)
    rng = np.random.default_rng(1)
    for _ in range(2):  # two episodes: reset forgets the chunks
        steering.reset()
        chunks = []  # newest first
        for t in range(5):
            obs, latent = _obs(rng), rng.uniform(-1, 1, K * A).astype(np.float32)
            chunks.insert(0, base.predict_chunk(obs, noise=1.5 * latent.reshape(K, A)))
            live = chunks[: min(t + 1, K)]  # this step's entry of each live chunk, weighted exp(-0.3 i)
            w = np.exp(-0.3 * np.arange(len(live)))
            want = sum(wi * c[i] for i, (wi, c) in enumerate(zip(w, live))) / w.sum()
            np.testing.assert_allclose(steering.action(obs, latent), want, atol=1e-5)
    obs = _obs(rng)
    steering.reset()
    clipped = steering.action(obs, np.full(K * A, 7.0))
    steering.reset()
    np.testing.assert_array_equal(clipped, steering.action(obs, np.ones(K * A)))  # the latent is bounded
    steering.reset()
    zero = steering.action(obs, np.zeros(K * A))
    np.testing.assert_array_equal(zero, base.predict_chunk(obs, noise=np.zeros((K, A)))[0])
    # warm-up latents carry the base's own noise, N(0, flow_noise_scale), clipped at the bound
    warm = np.stack([steering.warmup_latent(np.random.default_rng(s)) for s in range(200)]) * 1.5
    assert 0.8 < float(np.std(warm)) < 1.0 and np.abs(warm).max() <= 1.5
    with pytest.raises(ValueError, match=r"shape \(12,\)"):
        steering.action(obs, np.zeros(5))
    mlp = CallablePolicy(lambda o: np.zeros(A, np.float32))
    with pytest.raises(BasePolicyError, match="kind flow"):
        NoiseSteering(mlp, 1.5, "my_base")


def test_a_zero_steered_agent_acts_exactly_like_the_base_from_zero_noise_and_records_its_latent_action():
    base = _flow()
    steering = NoiseSteering(base, 1.5)
    zero_noise_base = _flow(flow_noise_scale=0.0)  # the same weights, acting from zero noise (ensembled chunks)
    latent_space = gym.spaces.Box(-1, 1, (K * A,), np.float32)
    agent = make_agent(AgentConfig(hidden_dims=(32, 32)), STATE_SPACE, latent_space, seed=0)
    zero_last_layer(agent.policy)
    rng = np.random.default_rng(3)
    acting = Acting(A, policy=agent.policy, steering=steering, rng=np.random.default_rng(4), deterministic=True)
    acting.reset()
    zero_noise_base.reset()
    for _ in range(2 * K):
        obs = _obs(rng)
        choice = acting.choose(obs, warmup=False)
        np.testing.assert_array_equal(choice.latent_action, np.zeros(K * A, np.float32))
        np.testing.assert_allclose(choice.action, zero_noise_base.act(obs), atol=1e-6)
        np.testing.assert_array_equal(choice.base_action, choice.action)
        assert choice.source == POLICY
    sampled = Acting(A, policy=agent.policy, steering=steering, rng=np.random.default_rng(4))
    obs = _obs(rng)
    latents = np.stack([sampled.choose(obs, warmup=False).latent_action for _ in range(10)])
    assert latents.std(axis=0).min() > 1e-3 and np.abs(latents).max() <= 1.0  # SAC explores in the latent space
    sampled.reset()
    warm = sampled.choose(obs, warmup=True)
    assert warm.source == WARMUP
    steering.reset()
    np.testing.assert_allclose(warm.action, steering.action(obs, warm.latent_action), atol=1e-6)


def test_a_stored_steered_episode_is_latent_actions_to_the_replay():
    n = 6
    episode = {
        keys.STATE: np.zeros((n, D), np.float32),
        keys.ACTION: np.full((n, A), 0.3, np.float32),
        keys.BASE_ACTION: np.full((n, A), 0.3, np.float32),
        keys.NOISE_ACTION: np.tile(np.linspace(-1, 1, K * A, dtype=np.float32), (n, 1)),
    }
    view = latent_episode(episode)
    np.testing.assert_array_equal(view[keys.ACTION], episode[keys.NOISE_ACTION])
    assert keys.BASE_ACTION not in view and keys.NOISE_ACTION not in view
    with pytest.raises(ValueError, match="not recorded by a noise-steered run"):
        latent_episode({k: v for k, v in episode.items() if k != keys.NOISE_ACTION})


def _train_args(base, out, *extra) -> list[str]:
    return [
        "train",
        "--task",
        "pick_cube",
        "--obs",
        "state",
        "--max-episode-steps",
        "30",
        "--base-policy",
        str(base),
        "--steer",
        "noise",
        "--steps",
        "80",
        "--warmup-steps",
        "30",
        *TINY_LEARNER_ARGS,
        "--threads",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def test_train_steering_a_flow_bases_noise_learns_on_latent_actions_and_starts_at_the_zero_noise_base(tmp_path):
    base_dir, out = tmp_path / "flow", tmp_path / "run"
    _flow(obs_dim=28).save(base_dir)  # pick_cube from state: 28 numbers
    steering = NoiseSteering(load_base_policy(base_dir), 1.5)
    zero = evaluate_base(  # the base acting from zero noise
        CallablePolicy(lambda obs: steering.action(obs, np.zeros(K * A)), reset=steering.reset, action_dim=A),
        "pick_cube",
        "state",
        episodes=3,
        max_episode_steps=30,
    )
    assert main(_train_args(base_dir, out)) == 0
    first_eval = json.loads((out / "eval.jsonl").read_text().splitlines()[0])
    assert (first_eval["return_mean"], first_eval["length_mean"]) == (zero.return_mean, zero.length_mean)
    assert not (out / "demos").exists()  # no demo replay: demo actions have no latent

    store = EpisodeStore.open(out / "episodes")
    steps = 0
    for ep in store.iter_episodes():  # every executed action is the base's, from the recorded latents
        assert ep[keys.NOISE_ACTION].shape == (len(ep[keys.ACTION]), K * A)
        steering.reset()
        want = np.stack([steering.action({keys.STATE: s}, z) for s, z in zip(ep[keys.STATE], ep[keys.NOISE_ACTION])])
        np.testing.assert_allclose(ep[keys.ACTION], want, atol=1e-5)
        np.testing.assert_array_equal(ep[keys.BASE_ACTION], ep[keys.ACTION])
        steps += len(want)
    assert steps >= 80
    ckpt = find_checkpoint(out)
    config = json.loads((ckpt / "agent" / "config.json").read_text())
    assert config["action_dim"] == K * A and "residual_config" not in config  # a plain agent in the latent space
    assert main(["eval", str(out), "--episodes", "2"]) == 0  # `robot-rl eval` steers the base with the saved policy
    assert main(["train", "--resume", str(out), "--steps", "110"]) == 0
    assert EpisodeStore.open(out / "episodes").n_episodes > store.n_episodes


def test_train_refuses_noise_steering_of_a_base_that_is_not_a_flow_in_one_line(tmp_path, capsys):
    mlp_dir = tmp_path / "mlp"
    torch.manual_seed(0)
    from robot_rl.bc import make_bc_policy

    make_bc_policy(BCPolicyConfig(hidden_dims=(16,)), {keys.STATE: [28]}, A).save(mlp_dir)
    capsys.readouterr()
    rc = main(_train_args(mlp_dir, tmp_path / "run"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "--steer noise steers a flow base's initial noise" in err[0] and "--kind flow" in err[0]
