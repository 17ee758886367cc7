"""The learner service without ROS: per-actor ordering, dedupe and gaps, the UTD budget, durable ingest, resume.

Episodes are real scripted pick_cube demos (MuJoCo, state obs) sent as real wire payloads into a real zarr
store; the agent is a small real SAC agent on CPU.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from robot_rl import keys, wire
from robot_rl.agents.policy import Policy
from robot_rl.agents.policy_delta import apply_delta, base_id
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.learner import episode_log
from robot_rl.learner.budget import UpdateBudget
from robot_rl.learner.checkpoint import find_checkpoint
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.ledger import ActorLedger, Verdict, decode_actor_id, encode_actor_id, source_of
from robot_rl.learner.service import LearnerService, Outcome

SMALL_AGENT = {"hidden_dims": [32, 32], "batch_size": 16, "utd_ratio": 2, "n_step": 3}


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> EpisodeStore:
    out = tmp_path_factory.mktemp("demos") / "pick_cube_state"
    record_scripted_demos(
        DemoConfig(
            task="pick_cube", episodes=4, out=out, obs_mode="state", noise=0.1, keep_failures=True, progress=False
        )
    )
    return EpisodeStore.open(out)


def payload(store: EpisodeStore, i: int, actor: str, index: int, policy_version: int = -1) -> bytes:
    meta = {
        "actor_id": actor,
        "index": index,
        "policy_version": policy_version,
        "success": True,
        "task_meta": {k: store.meta[k] for k in ("task", "obs_mode", "control_rate_hz", "action_layout")},
    }
    return wire.encode_episode(store.get_episode(i % store.n_episodes), meta)


def add_camera(episode: dict, size: int) -> dict:
    """The episode with a black `front` camera of size x size px (and its capture times), as a pixels actor sends."""
    n = len(episode[keys.ACTION])
    return {
        **episode,
        keys.image_key("front"): np.zeros((n, size, size, 3), np.uint8),
        keys.t_capture_key("front"): episode[keys.T_CAPTURE],
    }


def learner_config(tmp_path: Path, **overrides) -> LearnerConfig:
    agent_file = tmp_path / "agent.json"
    agent_file.write_text(json.dumps(SMALL_AGENT))
    return LearnerConfig(
        **{
            "out": str(tmp_path / "run"),
            "agent_config": str(agent_file),
            "min_steps_to_train": 30,
            "wandb_mode": "disabled",
            "checkpoint_every_episodes": 2,
            **overrides,
        }
    )


def test_ledger_accepts_the_next_index_ignores_duplicates_and_refuses_gaps():
    ledger = ActorLedger()
    assert ledger.verdict("/a", 0) is Verdict.ACCEPT
    ledger.record("/a", 0)
    assert [ledger.verdict("/a", i) for i in (0, 1, 3)] == [Verdict.DUPLICATE, Verdict.ACCEPT, Verdict.GAP]
    assert ledger.verdict("/b", 1) is Verdict.GAP and ledger.counts() == {"/a": 1}
    rebuilt = ActorLedger.from_sources([("/a", 0), ("/b", 0), ("/a", 1)])
    assert rebuilt.counts() == {"/a": 2, "/b": 1} and rebuilt.total == 3
    with pytest.raises(ValueError, match="index 2 of '/a'"):
        ActorLedger.from_sources([("/a", 0), ("/a", 2)])
    assert decode_actor_id(encode_actor_id("/robot_1/actor")) == "/robot_1/actor"
    with pytest.raises(ValueError, match="1..128"):
        encode_actor_id("x" * 129)


def test_budget_earns_utd_updates_per_step_only_after_replay_holds_min_steps():
    budget = UpdateBudget(utd_ratio=3, min_steps_to_train=100, demo_transitions=60)
    budget.add_steps(30)  # 90 transitions: still warming up
    assert not budget.trainable and budget.owed == 0
    budget.add_steps(25)  # 115 transitions: 15 beyond the warm-up
    assert budget.trainable and budget.owed == 45
    assert budget.next_chunk(20) == 20
    budget.add_updates(20)
    assert budget.owed == 25 and budget.next_chunk(100) == 25
    budget.add_updates(25)
    assert budget.owed == 0 and budget.next_chunk(100) == 0
    assert not UpdateBudget(utd_ratio=1, min_steps_to_train=0, demo_transitions=50).trainable  # no online data yet
    with pytest.raises(ValueError, match="utd_ratio"):
        UpdateBudget(utd_ratio=0, min_steps_to_train=0)


def test_ingest_stores_each_episode_once_in_order_per_actor_and_refuses_bad_payloads(tmp_path, demos):
    service = LearnerService(learner_config(tmp_path), log=lambda line: None)
    assert service.learner.agent is None and not service.policy_due()  # no demos: the first episode defines the agent
    assert service.ingest(payload(demos, 0, "/r1/actor", 0)).outcome is Outcome.STORED
    assert (
        service.learner.agent.obs_spec == {"state": [28]}
        and service.learner.agent.action_dim == 4
        and service.policy_due()
    )
    assert service.ingest(payload(demos, 1, "/r2/actor", 0)).outcome is Outcome.STORED
    assert service.ingest(payload(demos, 2, "/r1/actor", 1)).outcome is Outcome.STORED
    dup = service.ingest(payload(demos, 2, "/r1/actor", 1))
    assert dup.outcome is Outcome.DUPLICATE
    gap = service.ingest(payload(demos, 3, "/r2/actor", 2))
    assert gap.outcome is Outcome.GAP and "expected index 1" in gap.message
    assert service.acks() == {"/r1/actor": 2, "/r2/actor": 1}

    garbled = service.ingest(b"\x00\x01garbage" * 10)
    assert garbled.outcome is Outcome.REFUSED and "refused an episode payload (90 bytes)" in garbled.message
    wrong_kind = service.ingest(wire.encode("policy", {"x": np.zeros(3)}, {}))
    assert (
        wrong_kind.outcome is Outcome.REFUSED and "'episode'" in wrong_kind.message and "'policy'" in wrong_kind.message
    )
    episode = demos.get_episode(0)
    bad_shape = {**episode, keys.STATE: episode[keys.STATE][:, :20]}
    meta = {"actor_id": "/r3/actor", "index": 0, "policy_version": -1, "success": False, "task_meta": {}}
    refused = service.ingest(wire.encode_episode(bad_shape, meta))
    assert refused.outcome is Outcome.REFUSED and "'state' must be float32 (28,) per step" in refused.message
    nan_action = {**episode, keys.ACTION: np.full_like(episode[keys.ACTION], np.nan)}
    assert "non-finite" in service.ingest(wire.encode_episode(nan_action, {**meta, "index": 1})).message
    assert service.refused == {"unreadable": 2, "layout": 1, "non_finite": 1, "gap": 1}

    store = EpisodeStore.open(tmp_path / "run" / "episodes")  # refused episodes are acknowledged, never stored
    assert store.n_episodes == 3 and service.acks() == {"/r1/actor": 2, "/r2/actor": 1, "/r3/actor": 2}
    assert [source_of(ep) for ep in store.iter_episodes()] == [("/r1/actor", 0), ("/r2/actor", 0), ("/r1/actor", 1)]
    assert np.array_equal(store.get_episode(1)[keys.STATE], demos.get_episode(1)[keys.STATE])
    lines = episode_log.read(tmp_path / "run")
    assert [(r["actor_id"], r["index"]) for r in lines] == [("/r1/actor", 0), ("/r2/actor", 0), ("/r1/actor", 1)]
    assert lines[-1]["env_steps"] == sum(int(n) for n in store.episode_lengths)
    service.close()


def test_wrong_schema_version_is_refused_naming_both_versions(tmp_path, demos, monkeypatch):
    service = LearnerService(learner_config(tmp_path), log=lambda line: None)
    monkeypatch.setattr(wire, "WIRE_SCHEMA_VERSION", wire.WIRE_SCHEMA_VERSION + 1)
    newer = payload(demos, 0, "/r1/actor", 0)
    monkeypatch.undo()
    result = service.ingest(newer)
    assert result.outcome is Outcome.REFUSED
    assert f"schema version {wire.WIRE_SCHEMA_VERSION + 1}" in result.message
    assert f"reads version {wire.WIRE_SCHEMA_VERSION}" in result.message
    assert service.acks() == {} and not (tmp_path / "run" / "episodes").exists()
    service.close()


def test_updates_follow_the_budget_and_a_restarted_service_resumes_counts_agent_and_replay(tmp_path, demos):
    cfg = learner_config(tmp_path, demos=str(demos.path), max_updates_per_spin=10)
    service = LearnerService(cfg, log=lambda line: None)
    demo_steps = demos.n_steps
    assert service.learner.agent is not None and service.policy_due()  # built from the demo store: publish at once
    blob, version = service.take_policy()
    assert version == 0 and len(blob) > 1000 and not service.policy_due()
    sent_steps = 0
    for i in range(3):
        assert service.ingest(payload(demos, i, "/r1/actor", i)).outcome is Outcome.STORED
        sent_steps += int(demos.episode_lengths[i % demos.n_episodes])
    expected_owed = 2 * max(0, demo_steps + sent_steps - 30)
    assert service.owed_updates == expected_owed
    assert service.train_chunk() == min(10, expected_owed)  # one chunk between executor turns
    while service.train_chunk():
        pass
    assert service.learner.agent.step == expected_owed and service.owed_updates == 0
    push = service.take_push()  # the base was published with the full policy: now the trainable tensors alone
    assert push.delta and push.version == expected_owed and len(push.payload) < 0.6 * len(blob)
    actor_policy = Policy.from_bytes(blob)
    updated = apply_delta(actor_policy, base_id(actor_policy), push.payload)
    state = np.ones((1, 28), np.float32)
    assert np.allclose(
        updated.act({keys.STATE: state[0]}, True),
        service.learner.agent.policy.act({keys.STATE: state[0]}, True),
        atol=1e-3,
    )
    ckpt = service.checkpoint()
    assert ckpt is not None and json.loads((ckpt / "progress.json").read_text())["episodes"] == 3
    assert service.ingest(payload(demos, 3, "/r1/actor", 3)).outcome is Outcome.STORED  # after the checkpoint
    service.close()  # a crash here loses no stored episode: the next service reads them back

    resumed = LearnerService(cfg, log=lambda line: None)
    assert resumed.acks() == {"/r1/actor": 4}
    assert resumed.learner.agent.step == expected_owed  # from the checkpoint, not 0
    assert len(resumed.learner.online) == sent_steps + int(demos.episode_lengths[3])  # replay refilled from the store
    assert resumed.owed_updates == 2 * int(demos.episode_lengths[3])  # the post-checkpoint episode's updates
    assert resumed.policy_due() and not resumed.take_push().delta  # publish at once after a restart, in full
    assert resumed.ingest(payload(demos, 3, "/r1/actor", 3)).outcome is Outcome.DUPLICATE
    assert resumed.ingest(payload(demos, 0, "/r1/actor", 4)).outcome is Outcome.STORED
    assert find_checkpoint(tmp_path / "run") == ckpt
    assert len(episode_log.read(tmp_path / "run")) == 5
    resumed.close()


def test_a_replay_too_big_for_this_machine_is_refused_naming_a_capacity_that_fits(tmp_path, demos):
    service = LearnerService(learner_config(tmp_path, replay_capacity=10**8, encoder="conv"), log=lambda line: None)
    episode = demos.get_episode(0)
    with_camera = add_camera(episode, 64)
    meta = {"actor_id": "/r1/actor", "index": 0, "policy_version": -1, "success": True, "task_meta": {}}
    for _ in range(2):  # refused the same way each time: the learner stays without an agent, never half-built
        result = service.ingest(wire.encode_episode(with_camera, meta))
        assert result.outcome is Outcome.REFUSED and "set replay_capacity <=" in result.message, result.message
        assert service.learner.agent is None and service.acks() == {}
    service.close()


def test_learner_config_builds_the_agent_from_recipe_file_and_overrides(tmp_path):
    assert LearnerConfig(out="x").agent().hidden_dims == (128, 128)  # the in-process trainer's state recipe
    cfg = learner_config(tmp_path, utd_ratio=5)
    agent = cfg.agent()
    assert agent.hidden_dims == (32, 32) and agent.utd_ratio == 5 and agent.batch_size == 16
    (tmp_path / "a.yaml").write_text("agent:\n  batch_size: 8\n  encoder: conv\n")
    assert LearnerConfig(out="x", agent_config=str(tmp_path / "a.yaml")).agent().encoder == "conv"
    with pytest.raises(ValueError, match="choose one of"):
        LearnerConfig(out="x", wandb_mode="cloud")
    with pytest.raises(ValueError, match="unknown AgentConfig fields"):
        (tmp_path / "b.json").write_text(json.dumps({"hidden": 3}))
        LearnerConfig(out="x", agent_config=str(tmp_path / "b.json")).agent()
    assert asdict(cfg)["min_steps_to_train"] == 30


def _state_base(tmp_path: Path, demos: EpisodeStore) -> Path:
    """An untrained plain policy on the demos' proprioception, saved as a base policy (it ignores any camera)."""
    import gymnasium as gym

    from robot_rl.agents import AgentConfig, make_agent
    from robot_rl.spaces import space_from_spec

    spec = {k: list(s.step_shape) for k, s in demos.spec.items() if k == keys.STATE}
    make_agent(
        AgentConfig(hidden_dims=(16, 16)), space_from_spec(spec), gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    ).policy.save(tmp_path / "base")
    return tmp_path / "base"


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
def test_image_episodes_without_an_encoder_setting_get_the_pixel_recipe_and_a_log_line(tmp_path, demos, residual):
    from robot_rl.agents.residual import ResidualAgent

    overrides = {"base_policy": str(_state_base(tmp_path, demos))} if residual else {}
    lines: list[str] = []
    service = LearnerService(learner_config(tmp_path, replay_capacity=1000, **overrides), log=lines.append)
    episode = demos.get_episode(0)
    with_camera = add_camera(episode, 32)
    meta = {"actor_id": "/r1/actor", "index": 0, "policy_version": -1, "success": True, "task_meta": {}}
    assert service.ingest(wire.encode_episode(with_camera, meta)).outcome is Outcome.STORED
    cfg = service.learner.agent.cfg
    assert isinstance(service.learner.agent, ResidualAgent) == residual
    assert (cfg.encoder, cfg.freeze_encoder, cfg.bc_weight) == ("resnet10", True, 1.0)  # the BC term for both
    assert any("frozen ResNet-10" in line and "bc_weight 1.0" in line for line in lines)
    service.close()


def _with_takeover(episode: dict, start: int, end: int) -> dict:
    flags = np.zeros(len(episode[keys.ACTION]), dtype=bool)
    flags[start:end] = True
    return {**episode, keys.IS_INTERVENTION: flags}


def test_corrections_join_the_demo_replay_get_the_penalty_and_show_in_the_log_and_curve(tmp_path, demos):
    cfg = learner_config(tmp_path, intervention_penalty=-1.0, wandb_mode="offline")
    lines: list[str] = []
    service = LearnerService(cfg, log=lines.append)  # no demo store: the demo replay waits for corrections
    plain = demos.get_episode(0)
    meta = {
        "actor_id": "/r1/actor",
        "policy_version": -1,
        "success": True,
        "task_meta": {k: demos.meta[k] for k in ("task", "obs_mode", "control_rate_hz", "action_layout")},
    }
    assert service.ingest(wire.encode_episode(plain, {**meta, "index": 0})).outcome is Outcome.STORED
    assert len(service.learner.demos) == 0 and len(service.learner.sampler.sources) == 1  # nothing to mix in yet
    corrected = _with_takeover(demos.get_episode(1), 3, 7)
    assert service.ingest(wire.encode_episode(corrected, {**meta, "index": 1})).outcome is Outcome.STORED
    assert len(service.learner.demos) == 4  # the 4 intervened transitions
    assert len(service.learner.sampler.sources) == 2 and service.learner.sampler.counts(16) == [8, 8]
    assert (
        service.learner.sampler.sample(16).is_demo.tolist() == [False] * 8 + [True] * 8
    )  # what an optional BC term imitates
    assert any("corrections arrived" in line for line in lines)
    # RLIF: the step before the take-over (t=2) carries the penalty in the online replay, the store keeps the raw reward
    stored = service.learner.store.get_episode(1)
    assert np.array_equal(stored[keys.REWARD], corrected[keys.REWARD])
    records = episode_log.read(tmp_path / "run")
    assert [r["intervention_rate"] for r in records] == [0.0, round(4 / len(corrected[keys.ACTION]), 6)]
    rolled = episode_log.rolling(records, window=20)
    assert rolled[-1]["intervention_rate_recent"] == pytest.approx(records[1]["intervention_rate"] / 2, abs=1e-6)
    service.checkpoint()
    assert (tmp_path / "run" / episode_log.TRAIN_CURVE_PNG).stat().st_size > 1000
    service.close()
    resumed = LearnerService(cfg, log=lambda line: None)  # corrections come back from the store on restart
    assert len(resumed.learner.demos) == 4 and len(resumed.learner.sampler.sources) == 2
    resumed.close()


def test_the_penalty_lands_on_the_policy_step_that_led_to_each_take_over_only():
    from robot_rl.learner.corrections import penalize_takeovers

    episode = {keys.REWARD: np.zeros(8, np.float32), keys.IS_INTERVENTION: np.array([0, 0, 1, 1, 0, 1, 0, 0], bool)}
    out = penalize_takeovers(episode, -1.0)
    assert out[keys.REWARD].tolist() == [0, -1, 0, 0, -1, 0, 0, 0] and episode[keys.REWARD].sum() == 0
    assert penalize_takeovers(episode, 0.0) is episode


def test_a_residual_learner_relabels_demos_with_the_base_publishes_residual_policies_and_resumes(tmp_path, demos):
    import torch

    from robot_rl.agents.residual import ResidualAgent, ResidualPolicy, policy_from_bytes
    from robot_rl.bc.base import load_base_policy

    torch.manual_seed(3)
    base_dir = _state_base(tmp_path, demos)
    cfg = learner_config(tmp_path, demos=str(demos.path), base_policy=str(base_dir), critic_only_steps=5)
    service = LearnerService(cfg, log=lambda line: None)
    assert isinstance(service.learner.agent, ResidualAgent)
    batch = service.learner.demos.sample(32)
    base = load_base_policy(base_dir)
    expected = np.stack([base.act({keys.STATE: s}) for s in batch.obs[keys.STATE].numpy()])
    assert np.allclose(batch.base_action.numpy(), expected, atol=1e-5)  # demos carry the base's own actions
    blob, _ = service.take_policy()
    assert isinstance(policy_from_bytes(blob), ResidualPolicy)
    assert service.ingest(payload(demos, 0, "/r1/actor", 0)).outcome is Outcome.STORED
    while service.train_chunk():
        pass
    assert service.learner.agent.step > 5 and service.learner.agent.actor_training
    service.checkpoint()
    service.close()
    assert isinstance(LearnerService(cfg, log=lambda line: None).learner.agent, ResidualAgent)
    with pytest.raises(ValueError, match="holds a residual agent but base_policy is not set"):
        LearnerService(learner_config(tmp_path, demos=str(demos.path)), log=lambda line: None)
