"""Noise-space steering (DSRL) on the ROS side, without ROS: the actor's acting core and the learner service.

The actor node (steer:=noise) runs the flow base from the policy's latent action through `node_acting`; its
episodes carry `noise_action`, and the learner service (steer:=noise) trains a plain agent on (obs, latent)
through `Learner.replay_view`. Real scripted pick_cube episodes (MuJoCo, state obs), real wire payloads, a real
zarr run store.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys, wire
from robot_rl.acting.config import ActorConfig
from robot_rl.acting.core import node_acting, residual_mismatch
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.residual import ResidualConfig, make_residual_agent
from robot_rl.bc import BCPolicyConfig, make_bc_policy
from robot_rl.bc.base import BasePolicyError, load_base_policy
from robot_rl.bc.steering import NoiseSteering
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.service import LearnerService, Outcome
from robot_rl.spaces import space_from_spec

LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()
K, A = 3, 4  # the flow base's chunk: its latent action has K * A = 12 dims


def _flow_base(tmp: Path, kind: str = "flow") -> Path:
    torch.manual_seed(0)
    cfg = BCPolicyConfig(kind=kind, chunk_size=K, execution="ensemble", hidden_dims=(32, 32), flow_steps=3)
    make_bc_policy(cfg, LAYOUT.obs_spec(), A).save(tmp / kind)
    return tmp / kind


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("steer")
    out = tmp / "demos"
    record_scripted_demos(DemoConfig(task="pick_cube", episodes=2, out=out, obs_mode="state", progress=False))
    return tmp, _flow_base(tmp), EpisodeStore.open(out)


def _steered_payload(store: EpisodeStore, base_dir: Path, index: int, seed: int) -> tuple[bytes, dict]:
    """A demo episode re-acted as a steered actor records it: random latents, the base's actions from them."""
    episode = store.get_episode(index % store.n_episodes)
    steering, rng = NoiseSteering(load_base_policy(base_dir), 1.5), np.random.default_rng(seed)
    steering.reset()
    n = len(episode[keys.ACTION])
    latents = rng.uniform(-1, 1, (n, K * A)).astype(np.float32)
    actions = np.stack([steering.action({keys.STATE: episode[keys.STATE][t]}, latents[t]) for t in range(n)])
    episode = {**episode, keys.ACTION: actions, keys.BASE_ACTION: actions, keys.POLICY_ACTION: actions}
    episode[keys.NOISE_ACTION] = latents
    meta = {"actor_id": "/r/actor", "index": index, "policy_version": -1, "success": False}
    meta["task_meta"] = {k: store.meta[k] for k in ("task", "obs_mode", "control_rate_hz", "action_layout")}
    return wire.encode_episode(episode, meta), episode


def test_a_steering_learner_trains_a_plain_agent_on_the_latent_actions_and_refuses_unsteered_episodes(setup):
    tmp, base, demos = setup
    agent_file = tmp / "agent.json"
    agent_file.write_text(json.dumps({"hidden_dims": [32, 32], "batch_size": 16, "utd_ratio": 1}))
    cfg = LearnerConfig(
        out=str(tmp / "run"), agent_config=str(agent_file), task="pick_cube", base_policy=str(base), steer="noise",
        min_steps_to_train=10, wandb_mode="disabled",
    )  # fmt: skip
    service = LearnerService(cfg, log=lambda _: None)
    agent = service.learner.agent
    assert agent.action_dim == K * A and type(agent.policy).__name__ == "Policy"
    obs = {keys.STATE: demos.get_episode(0)[keys.STATE][0]}
    with torch.no_grad():  # untrained: its mean latent is 0, the base's zero-noise chunk
        assert np.array_equal(agent.policy.act(obs, deterministic=True), np.zeros(K * A, np.float32))
    payload, episode = _steered_payload(demos, base, 0, seed=1)
    assert service.ingest(payload).outcome is Outcome.STORED
    n = len(episode[keys.ACTION])
    replay = service.learner.online
    assert len(replay) == n and np.allclose(replay._action[:n].cpu().numpy(), episode[keys.NOISE_ACTION])
    assert service.train_chunk() > 0  # owed updates on the latent transitions

    plain = demos.get_episode(1)  # no noise_action: an actor that does not steer
    meta = {"actor_id": "/r/actor", "index": 1, "policy_version": -1, "success": True}
    meta["task_meta"] = {k: demos.meta[k] for k in ("task", "obs_mode", "control_rate_hz", "action_layout")}
    refused = service.ingest(wire.encode_episode(plain, meta))
    assert refused.outcome is Outcome.REFUSED and "missing ['noise_action']" in refused.message
    service.close()


def test_the_learner_refuses_steering_without_a_flow_base_or_with_demos(setup):
    tmp, base, _ = setup
    with pytest.raises(ValueError, match="no demos"):
        LearnerConfig(out=str(tmp / "r2"), base_policy=str(base), steer="noise", demos=str(tmp / "demos"))
    mlp = _flow_base(tmp, kind="mlp")
    with pytest.raises(BasePolicyError, match="without one"):
        LearnerService(
            LearnerConfig(
                out=str(tmp / "r3"), task="pick_cube", base_policy=str(mlp), steer="noise", wandb_mode="disabled"
            ),
            log=lambda _: None,
        )


def test_a_steering_actor_acts_as_the_base_from_the_policys_latent_and_refuses_other_policy_kinds(setup):
    _, base, demos = setup
    cfg = ActorConfig(task="pick_cube", obs_mode="state", base_policy=str(base), steer="noise", noise_bound=1.5)
    acting = node_acting(cfg, A, lambda: 0.0, obs_spec=LAYOUT.obs_spec())
    assert acting.base is None and acting.steering.latent_dim == K * A
    spaces = (space_from_spec(LAYOUT.obs_spec()), gym.spaces.Box(-1.0, 1.0, (K * A,), np.float32))
    latent_policy = make_agent(AgentConfig(hidden_dims=(32, 32)), *spaces).policy
    acting.policy = latent_policy
    replay = NoiseSteering(load_base_policy(base), 1.5)
    acting.reset(), replay.reset()
    episode = demos.get_episode(0)
    for t in range(6):
        obs = {keys.STATE: episode[keys.STATE][t]}
        choice = acting.choose(obs, warmup=False)
        assert choice.latent_action.shape == (K * A,)
        assert np.array_equal(choice.action, replay.action(obs, choice.latent_action))
        assert np.array_equal(choice.base_action, choice.action)
    refused = acting.refused_choice("base_policy")
    assert np.isnan(refused.action).all() and np.array_equal(refused.latent_action, np.zeros(K * A, np.float32))

    assert residual_mismatch(latent_policy, str(base), acting.steering) == ""
    plain = make_agent(AgentConfig(hidden_dims=(32, 32)), spaces[0], gym.spaces.Box(-1, 1, (A,), np.float32)).policy
    assert "latent action of 12 dims" in residual_mismatch(plain, str(base), acting.steering)
    residual = make_residual_agent(
        AgentConfig(hidden_dims=(32, 32)), ResidualConfig(), spaces[0], gym.spaces.Box(-1, 1, (A,), np.float32)
    ).policy
    assert "not a residual one" in residual_mismatch(residual, str(base), acting.steering)
    with pytest.raises(ValueError, match="needs base_policy"):
        ActorConfig(task="pick_cube", steer="noise").validate()
