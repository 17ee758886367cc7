"""Episodes cross process boundaries as safetensors bytes that round-trip exactly and refuse mismatches."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import keys
from robot_rl.wire import WIRE_SCHEMA_VERSION, WireError, decode, decode_episode, encode, encode_episode


def _make_episode(T: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        keys.STATE: rng.normal(size=(T, 18)).astype(np.float32),
        keys.image_key("front"): rng.integers(0, 256, size=(T, 16, 16, 3), dtype=np.uint8),
        keys.ACTION: rng.uniform(-1, 1, size=(T, 4)).astype(np.float32),
        keys.REWARD: (np.arange(T) == T - 1).astype(np.float32),
        keys.TERMINATED: (np.arange(T) == T - 1),
        keys.IS_INTERVENTION: np.zeros(T, dtype=bool),
        keys.T_CAPTURE: np.linspace(0, 0.6, T),
    }


def test_episode_round_trips_bytes_exactly():
    ep = _make_episode()
    back, meta = decode_episode(encode_episode(ep, {"actor": "robot_1", "episode": 4}))
    assert meta == {"actor": "robot_1", "episode": 4}
    assert set(back) == set(ep)
    for k in ep:
        assert back[k].dtype == ep[k].dtype and back[k].shape == ep[k].shape
        assert back[k].tobytes() == ep[k].tobytes()


def test_payload_of_another_kind_is_refused():
    with pytest.raises(WireError, match="expected a 'episode' payload, got 'policy'"):
        decode_episode(encode("policy", {"w": np.zeros(3, np.float32)}))


def test_payload_of_another_schema_version_is_refused_with_both_versions(monkeypatch):
    from robot_rl import wire

    monkeypatch.setattr(wire, "WIRE_SCHEMA_VERSION", 99)  # a payload from a future release
    payload = encode_episode(_make_episode())
    monkeypatch.undo()
    with pytest.raises(WireError, match=rf"schema version 99, this robot_rl reads version {WIRE_SCHEMA_VERSION}"):
        decode_episode(payload)


@pytest.mark.parametrize("garbage", [b"", b"1234", b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}....."])
def test_garbage_is_refused_with_a_message(garbage):
    with pytest.raises(WireError):
        decode(garbage, "episode")


def test_truncated_payload_is_refused():
    payload = encode_episode(_make_episode())
    with pytest.raises(WireError):
        decode_episode(payload[: len(payload) // 2])


def test_ragged_episode_and_object_arrays_are_refused():
    ep = _make_episode()
    ep[keys.ACTION] = ep[keys.ACTION][:-1]
    with pytest.raises(WireError, match="share their first dimension"):
        encode_episode(ep)
    with pytest.raises(WireError, match="only numeric and bool"):
        encode("episode", {"names": np.array(["a", "b"])})
