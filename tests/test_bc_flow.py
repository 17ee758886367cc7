"""The flow-matching BC policy, and bases brought from elsewhere: TorchScript files and `module:factory`."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from test_bc import _make_store

from robot_rl import keys
from robot_rl.bc import BCPolicy, BCPolicyConfig, BCTrainConfig, FlowBCPolicy, load_base_policy
from robot_rl.bc.base import BasePolicyError
from robot_rl.bc.torchscript import TorchScriptPolicy, layout_files
from robot_rl.bc.train import ChunkDataset, chunk_dataset, fit, obs_spec_of
from robot_rl.cli import main

# four observations, each with its own chunk of K = 2 actions of A = 2 (a deterministic mapping to learn)
STATES = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
CHUNKS = np.array(
    [[[0.8, -0.5], [0.6, -0.3]], [[-0.7, 0.2], [-0.4, 0.5]], [[0.1, 0.9], [0.3, 0.7]], [[-0.2, -0.8], [0.0, -0.6]]],
    np.float32,
)  # (4, K, A)


def _flow(seed: int = 0, **cfg) -> FlowBCPolicy:
    torch.manual_seed(seed)
    return FlowBCPolicy(BCPolicyConfig(kind="flow", chunk_size=2, hidden_dims=(64, 64), **cfg), {keys.STATE: [3]}, 2)


def _tiny_data(copies: int = 16) -> ChunkDataset:
    return ChunkDataset(
        obs={keys.STATE: torch.as_tensor(np.tile(STATES, (copies, 1)))},
        actions=torch.as_tensor(np.tile(CHUNKS, (copies, 1, 1))),
        mask=torch.ones(4 * copies, 2, dtype=torch.bool),
    )


def _trained_flow() -> tuple[FlowBCPolicy, list[float]]:
    policy = _flow()
    losses = fit(
        policy, _tiny_data(), BCTrainConfig(steps=600, batch_size=64, lr=3e-3, progress_bar=False, policy=policy.cfg)
    )
    return policy, losses


def test_the_flow_policy_learns_a_deterministic_chunk_mapping_from_any_initial_noise():
    policy, losses = _trained_flow()
    assert np.mean(losses[-50:]) < 0.1 * np.mean(losses[:10]), (losses[:10], losses[-50:])
    rng = np.random.default_rng(1)
    for state, want in zip(STATES, CHUNKS):
        for noise in (np.zeros((2, 2)), rng.standard_normal((2, 2))):  # every noise flows to the one demo chunk
            got = policy.predict_chunk({keys.STATE: state}, noise=noise)
            assert np.abs(got - want).max() < 0.1, (state, noise, got, want)


def test_the_same_noise_gives_the_same_chunk_and_other_noise_another_one():
    policy = _flow(flow_steps=5)
    obs = {keys.STATE: STATES[0]}
    z = np.random.default_rng(0).standard_normal((2, 2))
    np.testing.assert_array_equal(policy.predict_chunk(obs, noise=z), policy.predict_chunk(obs, noise=z))
    assert np.abs(policy.predict_chunk(obs, noise=z) - policy.predict_chunk(obs, noise=-z)).max() > 1e-3
    first, second = policy.predict_chunk(obs), policy.predict_chunk(obs)  # noise=None: fresh draws of noise_rng
    assert np.abs(first - second).max() > 1e-3
    scale0 = _flow(flow_steps=5, flow_noise_scale=0.0)  # noise scale 0: always the chunk of zero noise
    np.testing.assert_array_equal(scale0.predict_chunk(obs), scale0.predict_chunk(obs, noise=np.zeros((2, 2))))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        policy.predict_chunk(obs, noise=np.zeros((3, 2)))


def test_a_saved_flow_policy_loads_from_its_directory_and_bytes_and_acts_identically(tmp_path):
    policy = _flow(flow_steps=4)
    fit(policy, _tiny_data(2), BCTrainConfig(steps=5, batch_size=8, progress_bar=False, policy=policy.cfg))
    policy.save(tmp_path / "flow")
    assert json.loads((tmp_path / "flow" / "bc_policy.json").read_text())["bc_config"]["kind"] == "flow"
    copies = [
        load_base_policy(tmp_path / "flow"),
        BCPolicy.load(tmp_path / "flow"),
        BCPolicy.from_bytes(policy.to_bytes()),
    ]
    assert all(type(c) is FlowBCPolicy for c in copies)
    fresh = FlowBCPolicy.from_config_dict(policy.config_dict())  # the same noise_rng seed as every loaded copy
    fresh.load_state_dict(policy.state_dict())
    runs = []
    for p in [fresh, *copies]:
        p.reset()
        runs.append(np.stack([p.act({keys.STATE: s}) for s in STATES]))  # ensembled chunks of fresh noise draws
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])


def test_flow_on_images_trains_on_cached_frozen_trunk_features_and_reloads_to_the_same_chunks(tmp_path):
    store = _make_store([8, 8], image_px=32)
    spec = obs_spec_of(store)
    torch.manual_seed(0)
    cfg = BCPolicyConfig(kind="flow", chunk_size=2, hidden_dims=(32,), latent_dim=8, flow_steps=4)
    policy = FlowBCPolicy(cfg, spec, 2)
    assert policy.cfg.encoder == "resnet10" and policy.encoder.freeze_trunk  # the MLP kind's features path
    trunk_before = {k: v.clone() for k, v in policy.encoder.trunk.state_dict().items()}
    data = chunk_dataset(store, spec, 2)
    losses = fit(
        policy,
        data,
        BCTrainConfig(steps=200, batch_size=16, lr=3e-3, feature_cache_augs=2, progress_bar=False, policy=policy.cfg),
    )
    assert np.mean(losses[-20:]) < 0.4 * np.mean(losses[:20]), (losses[:20], losses[-20:])  # measured: 0.20
    assert all(torch.equal(v, trunk_before[k]) for k, v in policy.encoder.trunk.state_dict().items())
    policy.save(tmp_path / "flow")
    obs, z = {k: data.obs[k][3].numpy() for k in spec}, np.full((2, 2), 0.5)
    np.testing.assert_allclose(
        load_base_policy(tmp_path / "flow").predict_chunk(obs, noise=z), policy.predict_chunk(obs, noise=z), atol=1e-5
    )


class _ChunkModule(torch.nn.Module):
    """A TorchScript-able base: chunk (1, K=2, A=2) = tanh(W state + b), counting its calls."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)
        self.calls = 0

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        return torch.tanh(self.linear(obs["state"])).view(-1, 2, 2)


def test_a_torchscript_base_loads_with_an_embedded_or_a_sidecar_layout_and_replays_its_chunks(tmp_path):
    torch.manual_seed(0)
    module = torch.jit.script(_ChunkModule())
    torch.jit.save(module, str(tmp_path / "embedded.pt"), _extra_files=layout_files({"state": [3]}, 2))
    torch.jit.save(module, str(tmp_path / "sidecar.ts"))
    (tmp_path / "sidecar.ts.json").write_text(layout_files({"state": [3]}, 2)["robot_rl_base_layout.json"])
    want = [torch.tanh(module.linear(torch.as_tensor(s))).view(2, 2).detach().numpy() for s in STATES]
    for name in ("embedded.pt", "sidecar.ts"):
        base = load_base_policy(tmp_path / name, obs_spec={"state": [3], "other": [5]}, action_dim=2)
        assert isinstance(base, TorchScriptPolicy) and base.obs_spec == {"state": [3]} and base.action_dim == 2
        base.reset()
        acts = [base.act({"state": s}) for s in STATES]  # replay: steps 0, 1 from chunk 0; steps 2, 3 from chunk 2
        np.testing.assert_allclose(np.stack(acts), [want[0][0], want[0][1], want[2][0], want[2][1]], atol=1e-6)
        assert base.module.calls == 2
        base.module.calls = 0
    torch.jit.save(module, str(tmp_path / "bare.pt"))
    with pytest.raises(BasePolicyError, match="carries no layout"):
        load_base_policy(tmp_path / "bare.pt")


FACTORY_MODULE = """
import numpy as np
from robot_rl.bc.base import CallablePolicy


def make():
    return CallablePolicy(lambda obs: np.array([obs["state"][0], -0.5], np.float32), action_dim=2,
                          obs_spec={"state": [3]})


def not_a_policy():
    return 42
"""


def test_a_module_factory_base_loads_and_acts_and_bad_entry_points_are_refused(tmp_path, monkeypatch):
    (tmp_path / "my_bases.py").write_text(textwrap.dedent(FACTORY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    base = load_base_policy("my_bases:make", obs_spec={"state": [3]}, action_dim=2)
    base.reset()
    np.testing.assert_allclose(base.act({"state": np.array([0.25, 0, 0], np.float32)}), [0.25, -0.5])
    for source, message in (
        ("no_such_module_xyz:make", "cannot import no_such_module_xyz"),
        ("my_bases:missing", "has no callable 'missing'"),
        ("my_bases:not_a_policy", "returned a int"),
    ):
        with pytest.raises(BasePolicyError, match=message):
            load_base_policy(source)


def test_a_base_whose_layout_does_not_fit_the_env_is_refused_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_bases.py").write_text(textwrap.dedent(FACTORY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BasePolicyError, match=r"acts in 2 dims but the env takes 4"):
        load_base_policy("my_bases:make", obs_spec={"state": [3]}, action_dim=4)
    with pytest.raises(BasePolicyError, match=r"reads 'state' of shape \[3\] but the env gives \[28\]"):
        load_base_policy("my_bases:make", obs_spec={"state": [28]}, action_dim=2)
    with pytest.raises(BasePolicyError, match=r"reads observation keys \['state'\] that the env lacks"):
        load_base_policy("my_bases:make", obs_spec={"image_front": [64, 64, 3]}, action_dim=2)
    # through the CLI: pick_cube takes 4-dim actions from a 28-dim state; one line, exit 2, no traceback
    capsys.readouterr()
    assert main(["bc", "eval", "my_bases:make", "--task", "pick_cube", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("robot-rl: error: the base policy"), err
    assert "acts in 2 dims but the env takes 4" in err[0]


def test_flow_bc_trained_on_20_scripted_pick_cube_demos_picks_the_cube(tmp_path):
    demos, out = tmp_path / "demos", tmp_path / "flow"
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
                "--kind",
                "flow",
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
    assert metrics["eval_episodes"] == 10
    assert metrics["success_rate"] >= 0.6, f"flow BC on 20 demos should pick the cube in most episodes: {metrics}"
