"""ONNX and TorchScript bases: a BC checkpoint exported (`robot-rl bc export`) acts exactly as the checkpoint; an
ONNX model's layout is checked against the env's; chunks are executed as its layout says. Needs the `onnx` extra."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.bc import BCPolicyConfig, make_bc_policy
from robot_rl.bc.base import BasePolicyError, load_base_policy
from robot_rl.bc.policy import ChunkExecution
from robot_rl.bc.torchscript import BaseLayout
from robot_rl.cli import main

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'robot_rl[onnx]') is not installed")
pytest.importorskip("onnx", reason="exporting needs the onnx package (the onnx extra)")

SPEC, A, K = {keys.STATE: [7]}, 4, 4


def _actions(base, states: np.ndarray) -> np.ndarray:
    base.reset()
    return np.stack([base.act({keys.STATE: s}) for s in states])


@pytest.mark.parametrize("kind,execution", [("flow", "ensemble"), ("mlp", "replay")])
def test_an_exported_bc_base_acts_exactly_as_its_checkpoint_in_onnx_and_torchscript(tmp_path, capsys, kind, execution):
    torch.manual_seed(0)
    cfg = BCPolicyConfig(kind=kind, chunk_size=K, execution=execution, hidden_dims=(32, 32), flow_noise_scale=0.0)
    policy = make_bc_policy(cfg, SPEC, A)
    with torch.no_grad():
        policy.head[-1].bias.add_(0.3)  # actions away from zero
    policy.save(tmp_path / "bc")
    states = np.random.default_rng(1).normal(size=(11, 7)).astype(np.float32)
    want = _actions(load_base_policy(tmp_path / "bc"), states)
    assert np.abs(want).max() > 0.1
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        assert main(["bc", "export", str(tmp_path / "bc"), "--format", fmt]) == 0
        path = tmp_path / "bc" / f"base{suffix}"
        assert f"to {path}" in capsys.readouterr().out
        base = load_base_policy(str(path), obs_spec=SPEC, action_dim=A)
        assert base.layout.execution == execution
        np.testing.assert_allclose(_actions(base, states), want, atol=1e-5)


def _export_module(tmp_path, action_dim: int = A, execution: str = "ensemble", embed: bool = True):
    from robot_rl.bc.onnx_base import export_onnx

    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(7, K * action_dim), torch.nn.Tanh(), torch.nn.Unflatten(1, (K, action_dim))
    )
    layout = BaseLayout(SPEC, action_dim, execution, 0.2)
    path = export_onnx(net, layout, tmp_path / "m.onnx")
    if not embed:  # the same graph without its layout
        import onnx

        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.save(model, str(path))
    return net, path


def test_an_onnx_chunk_model_is_executed_as_its_layout_says_and_a_layout_mismatch_is_refused(tmp_path):
    net, path = _export_module(tmp_path)
    base = load_base_policy(str(path), obs_spec={keys.STATE: [7], "extra": [2]}, action_dim=A)
    states = np.random.default_rng(2).normal(size=(6, 7)).astype(np.float32)
    execution, want = ChunkExecution(K, "ensemble", 0.2), []
    with torch.no_grad():
        for s in states:
            want.append(execution.step(net(torch.as_tensor(s[None]))[0].numpy()))
    np.testing.assert_allclose(_actions(base, states), np.stack(want), atol=1e-5)

    with pytest.raises(BasePolicyError, match="acts in 4 dims but the env takes 3"):
        load_base_policy(str(path), obs_spec=SPEC, action_dim=3)
    with pytest.raises(BasePolicyError, match=r"reads 'state' of shape \[7\] but the env gives \[9\]"):
        load_base_policy(str(path), obs_spec={keys.STATE: [9]}, action_dim=A)
    _, bare = _export_module(tmp_path, embed=False)
    with pytest.raises(BasePolicyError, match="carries no layout"):
        load_base_policy(str(bare))
    (tmp_path / "m.onnx.json").write_text(BaseLayout(SPEC, A, "replay").to_json())  # the sidecar layout
    assert load_base_policy(str(bare)).layout.execution == "replay"
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(BasePolicyError, match="is not an ONNX model"):
        load_base_policy(str(tmp_path / "junk.onnx"))
