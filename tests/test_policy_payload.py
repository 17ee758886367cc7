"""Policy bytes from the wire are checked before anything they declare is allocated, and bad ones are refused.

Hostile payloads carry a valid checksum (made with the same tools an honest sender uses), so each test
reaches the check it is about rather than stopping at the checksum.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save

from robot_rl.agents.config import AgentConfig
from robot_rl.agents.policy import Policy, PolicyPayloadError
from robot_rl.agents.residual import policy_from_bytes
from robot_rl.wire import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, WireError, stamp_checksum


def _policy() -> Policy:
    torch.manual_seed(0)
    return Policy(AgentConfig(hidden_dims=(8, 8)), {"state": [2]}, 3)


def _payload(tensors: dict[str, torch.Tensor], config: dict) -> bytes:
    meta = {"config": json.dumps(config), CHECKSUM_KEY: CHECKSUM_PLACEHOLDER}
    return stamp_checksum(save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))


def test_round_trip_acts_the_same():
    policy = _policy()
    back = Policy.from_bytes(policy.to_bytes())
    obs = {"state": np.array([0.3, -0.2], np.float32)}
    np.testing.assert_array_equal(back.act(obs, deterministic=True), policy.act(obs, deterministic=True))


def test_truncated_weight_inside_a_valid_payload_is_refused():
    policy = _policy()
    tensors = dict(policy.state_dict())
    name = next(k for k in tensors if k.endswith("weight"))
    tensors[name] = tensors[name][:-1]  # one row short, payload otherwise well-formed and checksummed
    with pytest.raises(
        PolicyPayloadError, match=rf"policy weight '{name}' is F32\[7, 2\], its config builds F32\[8, 2\]"
    ):
        Policy.from_bytes(_payload(tensors, policy.config_dict()))
    del tensors[name]
    with pytest.raises(PolicyPayloadError, match="missing"):
        Policy.from_bytes(_payload(tensors, policy.config_dict()))


def test_non_finite_weights_are_refused():
    policy = _policy()
    for bad in (float("nan"), float("inf")):
        tensors = {k: v.clone() for k, v in policy.state_dict().items()}
        next(v for k, v in tensors.items() if k.endswith("bias"))[0] = bad
        with pytest.raises(PolicyPayloadError, match="NaN or infinite"):
            Policy.from_bytes(_payload(tensors, policy.config_dict()))


def test_wrong_dtype_is_refused():
    policy = _policy()
    tensors = {k: v.double() for k, v in policy.state_dict().items()}
    with pytest.raises(PolicyPayloadError, match="F64"):
        Policy.from_bytes(_payload(tensors, policy.config_dict()))


@pytest.mark.parametrize(
    "agent_change, top_change, reason",
    [
        ({"hidden_dims": [10**6, 10**6]}, {}, "hidden_dims"),
        ({"hidden_dims": [8] * 1000}, {}, "hidden_dims"),
        ({"hidden_dims": [-8]}, {}, "hidden_dims"),
        ({"latent_dim": 2**40}, {}, "latent_dim"),
        ({}, {"action_dim": 10**12}, "action_dim"),
        ({}, {"action_dim": "3"}, "action_dim"),
        ({}, {"obs_spec": {"front": [10**5, 10**5, 3]}}, "obs_spec"),
        ({}, {"obs_spec": []}, "obs_spec"),
        ({"algo": "nope"}, {}, "does not build"),
        ({"no_such_field": 1}, {}, "does not build"),
        ({}, {"format": "other"}, "does not build"),
    ],
)
def test_config_sizes_are_bounded_before_any_network_is_built(agent_change, top_change, reason):
    policy = _policy()
    config = policy.config_dict()
    config = {**config, **top_change, "agent_config": {**config["agent_config"], **agent_change}}
    payload = _payload(dict(policy.state_dict()), config)
    t0 = time.perf_counter()
    with pytest.raises(PolicyPayloadError, match=reason):
        Policy.from_bytes(payload)
    assert time.perf_counter() - t0 < 0.5  # refused from the header and config: no GBs, no seconds


def test_valid_sizes_that_do_not_match_the_weights_are_refused_without_allocating():
    policy = _policy()
    config = policy.config_dict()
    config["agent_config"]["hidden_dims"] = [8192, 8192]  # within bounds, but 6.7e7 params: not in a few kB
    t0 = time.perf_counter()
    with pytest.raises(PolicyPayloadError, match="its config builds F32\\[8192"):
        Policy.from_bytes(_payload(dict(policy.state_dict()), config))
    assert time.perf_counter() - t0 < 0.5


def test_every_sampled_byte_flip_is_detected():
    payload = _policy().to_bytes()
    rng = np.random.default_rng(0)
    for i in rng.choice(len(payload), 400, replace=False):
        flipped = bytearray(payload)
        flipped[i] ^= int(rng.integers(1, 256))
        with pytest.raises(WireError):
            policy_from_bytes(bytes(flipped))


def test_payload_without_checksum_is_refused():
    policy = _policy()
    unsummed = save(dict(policy.state_dict()), metadata={"config": json.dumps(policy.config_dict())})
    with pytest.raises(PolicyPayloadError, match="checksum"):
        Policy.from_bytes(unsummed)
