"""BCPolicy.from_bytes runs the checks of Policy.from_bytes: checksum, bounded config, exact tensors, finite weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from robot_rl import wire
from robot_rl.agents.policy import PolicyPayloadError
from robot_rl.bc.config import BCPolicyConfig
from robot_rl.bc.policy import BCPolicy

SPEC = {"state": [7]}


def _policy() -> BCPolicy:
    torch.manual_seed(0)
    return BCPolicy(BCPolicyConfig(chunk_size=2, hidden_dims=(16,), encoder="none"), SPEC, 4)


def _bytes(tensors: dict, config: dict) -> bytes:
    meta = {"config": json.dumps(config), wire.CHECKSUM_KEY: wire.CHECKSUM_PLACEHOLDER}
    return wire.stamp_checksum(save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))


def test_bc_bytes_round_trip_and_every_damage_is_refused():
    good = _policy()
    state, config = dict(good.state_dict()), good.config_dict()
    back = BCPolicy.from_bytes(good.to_bytes())
    assert all(torch.equal(back.state_dict()[k], v) for k, v in state.items())
    name = next(k for k in state if k.endswith("weight"))
    nan = {k: v.clone() for k, v in state.items()}
    nan[name].view(-1)[0] = float("nan")
    flipped = bytearray(good.to_bytes())
    flipped[-5] ^= 0x01
    bad = {
        "checksum": bytes(flipped),
        "NaN weight": _bytes(nan, config),
        "truncated weight": _bytes({**state, name: state[name][:-1]}, config),
        "missing weight": _bytes({k: v for k, v in state.items() if k != name}, config),
        "huge layers": _bytes(state, {**config, "bc_config": {**config["bc_config"], "hidden_dims": [10**9]}}),
        "huge chunk": _bytes(state, {**config, "bc_config": {**config["bc_config"], "chunk_size": 10**9}}),
        "no config": wire.stamp_checksum(save(state, metadata={wire.CHECKSUM_KEY: wire.CHECKSUM_PLACEHOLDER})),
        "unchecksummed": save({k: v.contiguous() for k, v in state.items()}, metadata={"config": json.dumps(config)}),
    }
    for what, data in bad.items():
        with pytest.raises(PolicyPayloadError):
            BCPolicy.from_bytes(data)
            pytest.fail(f"{what} was accepted")


def test_flow_bc_bytes_round_trip_to_the_flow_kind_and_oversized_flow_configs_are_refused():
    from robot_rl.bc.flow import FlowBCPolicy

    torch.manual_seed(0)
    good = FlowBCPolicy(BCPolicyConfig(kind="flow", chunk_size=3, hidden_dims=(16,), encoder="none"), SPEC, 4)
    state, config = dict(good.state_dict()), good.config_dict()
    back = BCPolicy.from_bytes(good.to_bytes())
    assert type(back) is FlowBCPolicy and back.cfg.flow_steps == 10
    assert all(torch.equal(back.state_dict()[k], v) for k, v in state.items())
    as_mlp = {**config, "bc_config": {**config["bc_config"], "kind": "mlp"}}  # the flow's weights under an MLP config
    for what, bc in {"huge flow_steps": {"flow_steps": 10**9}, "huge time embedding": {"flow_time_dim": 10**6}}.items():
        with pytest.raises(PolicyPayloadError):
            BCPolicy.from_bytes(_bytes(state, {**config, "bc_config": {**config["bc_config"], **bc}}))
            pytest.fail(f"{what} was accepted")
    with pytest.raises(PolicyPayloadError, match="policy weight"):
        BCPolicy.from_bytes(_bytes(state, as_mlp))
