"""Behaviour cloning: chunk targets, chunk execution, the base-policy adapter, persistence, and a real BC run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.bc import BCPolicy, BCPolicyConfig, BCTrainConfig, CallablePolicy, ChunkExecution, load_base_policy
from robot_rl.bc.train import chunk_dataset, fit, obs_spec_of
from robot_rl.cli import main
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.data.recorder import EpisodeRecorder


def _make_store(lengths: list[int], image_px: int = 0, seed: int = 0) -> MemoryEpisodeStore:
    """Episodes whose action at step t is (t / 10, -t / 10) and whose state is (t, 2t, 1): easy to check."""
    rng = np.random.default_rng(seed)
    store = MemoryEpisodeStore({"task": "pick_cube", "obs_mode": "pixels" if image_px else "state"})
    rec = EpisodeRecorder(store)

    def obs(t: int):
        o = {keys.STATE: np.array([t, 2 * t, 1.0], np.float32)}
        if image_px:
            o[keys.image_key("front")] = rng.integers(0, 255, (image_px, image_px, 3), dtype=np.uint8)
        return o

    for n in lengths:
        rec.start(obs(0))
        for t in range(n):
            rec.step(np.array([t / 10, -t / 10], np.float32), obs(t + 1), 0.0, t == n - 1, False, {})
        rec.end()
    return store


def test_chunk_targets_hold_the_next_k_actions_and_mask_steps_past_the_episode_end():
    store = _make_store([3, 2])
    data = chunk_dataset(store, obs_spec_of(store), chunk_size=4)
    assert len(data) == 5 and data.actions.shape == (5, 4, 2)
    # episode 0, step 1: actions of steps 1, 2, then the last one repeated (masked)
    np.testing.assert_allclose(data.actions[1, :, 0].numpy(), [0.1, 0.2, 0.2, 0.2])
    assert data.mask[1].tolist() == [True, True, False, False]
    assert data.mask[0].tolist() == [True, True, True, False]
    # episode 1 starts again at t = 0 and never borrows episode 0's actions
    np.testing.assert_allclose(data.actions[3, :, 1].numpy(), [0.0, -0.1, -0.1, -0.1])
    np.testing.assert_allclose(data.obs[keys.STATE][4].numpy(), [1, 2, 1])


def test_temporal_ensembling_averages_this_steps_predictions_of_the_last_k_chunks_newest_weighted_most():
    ex = ChunkExecution(chunk_size=3, mode="ensemble", decay=np.log(2.0))  # weights 1, 1/2, 1/4 from the newest
    a0 = ex.step(np.array([[0.0], [10.0], [20.0]]))
    a1 = ex.step(np.array([[1.0], [11.0], [21.0]]))
    a2 = ex.step(np.array([[2.0], [12.0], [22.0]]))
    a3 = ex.step(np.array([[3.0], [13.0], [23.0]]))  # the chunk of step 0 has expired
    assert a0[0] == pytest.approx(0.0)
    assert a1[0] == pytest.approx((1.0 * 1 + 10.0 * 0.5) / 1.5)
    assert a2[0] == pytest.approx((2.0 * 1 + 11.0 * 0.5 + 20.0 * 0.25) / 1.75)
    assert a3[0] == pytest.approx((3.0 * 1 + 12.0 * 0.5 + 21.0 * 0.25) / 1.75)
    ex.reset()
    assert ex.step(np.array([[5.0], [6.0], [7.0]]))[0] == pytest.approx(5.0)


def test_chunk_replay_executes_a_chunk_open_loop_then_asks_for_the_next():
    ex = ChunkExecution(chunk_size=2, mode="replay", decay=0.0)
    out = []
    for t in range(5):
        chunk = np.array([[10.0 * t], [10.0 * t + 1]]) if ex.needs_prediction() else None
        out.append(float(ex.step(chunk)[0]))
    assert out == [0.0, 1.0, 20.0, 21.0, 40.0]


def test_callable_policy_replays_returned_chunks_resets_and_refuses_bad_actions():
    calls = []

    def fn(obs):
        calls.append(obs["x"])
        return np.array([[obs["x"], 0.5], [obs["x"] + 1, 2.0]], np.float32)  # (K=2, A=2); 2.0 gets clipped

    base = CallablePolicy(fn, action_dim=2)
    acts = [base.act({"x": x}) for x in (0.1, 0.2, 0.3)]
    assert calls == [0.1, 0.3]
    np.testing.assert_allclose(np.stack(acts), [[0.1, 0.5], [1.0, 1.0], [0.3, 0.5]])
    base.reset()
    base.act({"x": 0.0})
    assert calls == [0.1, 0.3, 0.0]
    with pytest.raises(ValueError, match="non-finite"):
        CallablePolicy(lambda obs: np.array([np.nan, 0.0])).act({})
    with pytest.raises(ValueError, match=r"expects \(3,\)"):
        CallablePolicy(lambda obs: np.zeros(2), action_dim=3).act({})


def test_bc_policy_round_trips_through_a_directory_and_bytes_and_loads_as_a_base_policy(tmp_path):
    store = _make_store([6, 5])
    policy = BCPolicy(BCPolicyConfig(chunk_size=3, hidden_dims=(16,)), obs_spec_of(store), 2)
    fit(
        policy,
        chunk_dataset(store, obs_spec_of(store), 3),
        BCTrainConfig(steps=20, batch_size=8, progress_bar=False, policy=policy.cfg),
    )
    policy.save(tmp_path / "bc")
    obs = {keys.STATE: np.array([2.0, 4.0, 1.0], np.float32)}
    want = policy.predict_chunk(obs)
    assert want.shape == (3, 2)
    np.testing.assert_array_equal(BCPolicy.load(tmp_path / "bc").predict_chunk(obs), want)
    np.testing.assert_array_equal(BCPolicy.from_bytes(policy.to_bytes()).predict_chunk(obs), want)
    base = load_base_policy(tmp_path / "bc")
    base.reset()
    np.testing.assert_array_equal(base.act(obs), want[0])  # the first step of an episode: only one chunk
    with pytest.raises(FileNotFoundError, match="no base policy"):
        load_base_policy(tmp_path)


def test_bc_with_a_trained_conv_encoder_lowers_its_loss_on_a_small_pixel_store():
    store = _make_store([8, 8], image_px=32)
    spec = obs_spec_of(store)
    assert spec == {keys.image_key("front"): [32, 32, 3], keys.STATE: [3]}
    torch.manual_seed(0)
    cfg = BCPolicyConfig(chunk_size=2, hidden_dims=(32,), encoder="conv", latent_dim=8, image_aug_pad_px=2)
    policy = BCPolicy(cfg, spec, 2)
    trunk_before = [p.detach().clone() for p in policy.encoder.trunk.parameters()]
    losses = fit(
        policy,
        chunk_dataset(store, spec, 2),
        BCTrainConfig(steps=60, batch_size=16, lr=3e-3, progress_bar=False, policy=policy.cfg),
    )
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert any(not torch.equal(a, b) for a, b in zip(trunk_before, policy.encoder.trunk.parameters()))  # it trained


def test_bc_on_images_defaults_to_a_frozen_resnet_whose_features_are_cached_once_per_frame(tmp_path):
    store = _make_store([8, 8], image_px=32)
    spec = obs_spec_of(store)
    torch.manual_seed(0)
    policy = BCPolicy(BCPolicyConfig(chunk_size=2, hidden_dims=(32,), latent_dim=8, image_aug_pad_px=2), spec, 2)
    assert policy.cfg.encoder == "resnet10" and policy.encoder.freeze_trunk  # "auto" with images
    trunk_before = {k: v.clone() for k, v in policy.encoder.trunk.state_dict().items()}
    (shape,) = set(policy.encoder.image_shapes.values())
    trunk = policy.encoder.frozen_pass(shape)  # the pass the demo cache runs (prepared once; eager on a GPU)
    data = chunk_dataset(store, spec, 2)
    losses = fit(
        policy,
        data,
        BCTrainConfig(steps=60, batch_size=16, lr=3e-3, feature_cache_augs=3, progress_bar=False, policy=policy.cfg),
    )
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    for k, v in policy.encoder.trunk.state_dict().items():
        assert torch.equal(v, trunk_before[k]), f"the frozen trunk changed: {k}"
    assert (trunk.calls, trunk.frames) == (1, 16 * 3)  # 3 views of the 16 frames while caching, none in 60 steps
    # the saved policy names its encoder and acts on raw frames exactly as the trained one
    policy.save(tmp_path / "bc")
    saved = json.loads((tmp_path / "bc" / "bc_policy.json").read_text())["bc_config"]
    assert saved["encoder"] == "resnet10" and saved["freeze_encoder"] is True
    obs = {k: data.obs[k][3].numpy() for k in spec}
    np.testing.assert_allclose(BCPolicy.load(tmp_path / "bc").predict_chunk(obs), policy.predict_chunk(obs), atol=1e-5)


def test_a_bc_policy_saved_with_encoder_auto_before_it_was_resolved_still_loads_as_the_conv_it_was():
    spec = {keys.image_key("front"): [32, 32, 3], keys.STATE: [3]}
    conv = BCPolicy(BCPolicyConfig(hidden_dims=(8,), encoder="conv", latent_dim=4), spec, 2)
    d = conv.config_dict()
    d["bc_config"] = {k: v for k, v in d["bc_config"].items() if k != "freeze_encoder"} | {"encoder": "auto"}
    old = BCPolicy.from_config_dict(d)
    assert old.cfg.encoder == "conv" and not old.encoder.freeze_trunk
    old._load_weights(conv.state_dict())


def test_bc_trained_on_20_scripted_pick_cube_demos_picks_the_cube_and_bc_eval_reproduces_it(tmp_path, capsys):
    demos, out = tmp_path / "demos", tmp_path / "bc"
    assert (
        main(
            [
                "demos",
                "record",
                "--task",
                "pick_cube",
                "--scripted",
                "--episodes",
                "20",
                "--obs",
                "state",
                "--noise",
                "0.1",
                "--out",
                str(demos),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "bc",
                "train",
                "--demos",
                str(demos),
                "--out",
                str(out),
                "--steps",
                "1000",
                "--hidden-dims",
                "128",
                "128",
                "--eval-episodes",
                "10",
                "--no-progress-bar",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "bc_eval.json").read_text())
    assert metrics["task"] == "pick_cube" and metrics["eval_episodes"] == 10
    assert metrics["success_rate"] >= 0.6, f"BC on 20 demos should pick the cube in most episodes: {metrics}"
    capsys.readouterr()
    assert main(["bc", "eval", str(out), "--episodes", "10"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["success_rate"] == metrics["success_rate"]  # same seeds, same weights: the same episodes
