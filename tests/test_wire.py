"""Episodes cross process boundaries as safetensors bytes that round-trip exactly and refuse mismatches."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from robot_rl import keys
from robot_rl.wire import CHECKSUM_KEY, WIRE_SCHEMA_VERSION, WireError, decode, decode_episode, encode, encode_episode


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


# --- hostile payloads: bounds checked before allocation, checksums over every byte ---------------------------------
def _forged(header: dict, data: bytes = b"") -> bytes:
    """Safetensors-framed bytes with an arbitrary (hostile) header, as an attacker or a broken peer would send."""
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def _meta(kind: str = "episode") -> dict:
    return {
        "__metadata__": {
            "robot_rl.kind": kind,
            "robot_rl.schema_version": str(WIRE_SCHEMA_VERSION),
            "robot_rl.meta": "{}",
            CHECKSUM_KEY: "00000000",
        }
    }


def test_every_single_byte_flip_of_a_real_payload_is_detected():
    payload = encode_episode(_make_episode(T=3), {"actor": "robot_1", "episode": 4})
    decode_episode(payload)  # the untouched payload reads
    rng = np.random.default_rng(0)
    positions = list(range(len(payload))) if len(payload) < 4000 else rng.choice(len(payload), 4000, replace=False)
    for i in positions:
        flipped = bytearray(payload)
        flipped[i] ^= int(rng.integers(1, 256))
        with pytest.raises(WireError):
            decode_episode(bytes(flipped))
    assert len(positions) > 1000  # the whole payload (header and data) was covered


def test_checksum_mismatch_names_both_values():
    payload = bytearray(encode("episode", {"x": np.arange(64, dtype=np.float32)}))
    payload[-1] ^= 0x01
    with pytest.raises(WireError, match="checksum mismatch"):
        decode(bytes(payload), "episode")


def test_payload_without_checksum_is_refused():
    from safetensors.numpy import save as st_save

    old = st_save(
        {"x": np.zeros(3, np.float32)}, metadata={k: v for k, v in _meta()["__metadata__"].items() if k != CHECKSUM_KEY}
    )
    with pytest.raises(WireError, match="no valid robot_rl.crc32"):
        decode(old, "episode")


def test_schema_1_payloads_are_refused_with_the_version_message():
    from safetensors.numpy import save as st_save

    v1 = st_save(
        {"x": np.zeros(3, np.float32)},
        metadata={"robot_rl.kind": "episode", "robot_rl.schema_version": "1", "robot_rl.meta": "{}"},
    )
    with pytest.raises(WireError, match=rf"schema version 1, this robot_rl reads version {WIRE_SCHEMA_VERSION}"):
        decode(v1, "episode")


@pytest.mark.parametrize(
    "entry, reason",
    [
        ({"dtype": "F32", "shape": [10**12], "data_offsets": [0, 16]}, "declares 4000000000000 bytes"),
        ({"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}, "declares"),
        ({"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}, "ints >= 0"),
        ({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}, "ints >= 0"),
        ({"dtype": "F32", "shape": [True], "data_offsets": [0, 16]}, "ints >= 0"),
        ({"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}, "at most 8"),
        ({"dtype": "X99", "shape": [4], "data_offsets": [0, 16]}, "unknown dtype"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}, "declares 16 bytes"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [0]}, "not \\[begin, end\\]"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "data section holds 16"),
        ("not an object", "not an object"),
    ],
)
def test_hostile_headers_are_refused_before_any_allocation(entry, reason):
    payload = _forged({**_meta(), "x": entry}, b"\x00" * 16)
    assert len(payload) < 1024
    t0 = time.perf_counter()
    with pytest.raises(WireError, match=reason):
        decode(payload, "episode")
    assert time.perf_counter() - t0 < 0.01  # refused from the header alone: no 4 TB allocation, no seconds


def test_overlapping_tensors_and_too_many_tensors_are_refused():
    overlap = {
        "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
    }
    with pytest.raises(WireError, match="tile the data section"):
        decode(_forged({**_meta(), **overlap}, b"\x00" * 16), "episode")
    many = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(5000)}
    with pytest.raises(WireError, match="5000 tensors"):
        decode(_forged({**_meta(), **many}), "episode")


@pytest.mark.parametrize("n_declared", [0, 1, 2**40, 2**64 - 1])
def test_header_length_outside_the_payload_or_the_cap_is_refused(n_declared):
    with pytest.raises(WireError, match="header length"):
        decode(n_declared.to_bytes(8, "little") + b"{}" * 8, "episode")


@pytest.mark.parametrize("header", [b"[1, 2]", b'{"a": ' * 100000 + b"1" + b"}" * 100000, b"9" * 5000, b"\xff\xfe"])
def test_header_json_that_is_not_an_object_or_too_deep_is_refused(header):
    with pytest.raises(WireError):
        decode(len(header).to_bytes(8, "little") + header, "episode")


def test_metadata_that_is_not_a_json_object_is_refused():
    from safetensors.numpy import save as st_save

    from robot_rl.wire import stamp_checksum

    meta = {**_meta()["__metadata__"], "robot_rl.meta": "[1, 2]"}
    with pytest.raises(WireError, match="not a JSON object"):
        decode(stamp_checksum(st_save({"x": np.zeros(1)}, metadata=meta)), "episode")


def test_decoded_episode_with_ragged_or_scalar_arrays_is_refused():
    from safetensors.numpy import save as st_save

    from robot_rl.wire import stamp_checksum

    with pytest.raises(WireError, match="share their first dimension"):
        decode_episode(encode("episode", {"a": np.zeros(3), "b": np.zeros(4)}))
    with pytest.raises(WireError, match="scalars"):
        decode_episode(stamp_checksum(st_save({"a": np.array(1.0)}, metadata=_meta()["__metadata__"])))


def test_random_garbage_never_escapes_as_another_error():
    rng = np.random.default_rng(1)
    real = encode_episode(_make_episode(T=2))
    for _ in range(300):
        cut = bytearray(real[: int(rng.integers(0, len(real)))])
        for i in rng.integers(0, max(len(cut), 1), size=3):
            if cut:
                cut[i] = int(rng.integers(0, 256))
        with pytest.raises(WireError):
            decode_episode(bytes(cut))
