"""Payloads with no standard ROS message type (episodes), as self-describing safetensors bytes.

Safetensors holds only arrays and a string-to-string metadata header, so decoding never
executes anything. Every payload names its kind and a schema version; a reader refuses a
payload of another kind or version with a message that says which it got and which it reads.
The bytes travel in `std_msgs/UInt8MultiArray` between actor and learner nodes.
"""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

WIRE_SCHEMA_VERSION = 1
_KIND_KEY, _VERSION_KEY, _META_KEY = "robot_rl.kind", "robot_rl.schema_version", "robot_rl.meta"


class WireError(ValueError):
    """A payload that cannot be read: wrong kind, wrong version, or not a robot_rl payload."""


def encode(kind: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> bytes:
    """Arrays (any numeric dtype or bool) plus JSON-able metadata -> bytes."""
    clean = {}
    for key, value in arrays.items():
        arr = np.ascontiguousarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise WireError(f"array {key!r} has dtype {arr.dtype}; only numeric and bool arrays can be sent")
        clean[key] = arr
    header = {_KIND_KEY: kind, _VERSION_KEY: str(WIRE_SCHEMA_VERSION), _META_KEY: json.dumps(meta or {})}
    return st_save(clean, metadata=header)


def decode(payload: bytes, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    """bytes -> (arrays, meta); refuses another kind or schema version."""
    try:
        header = _read_header(payload)
        arrays = st_load(bytes(payload))
    except WireError:
        raise
    except Exception as e:  # safetensors raises its own error types for truncated or garbled bytes
        raise WireError(f"not a readable robot_rl payload ({len(payload)} bytes): {e}") from None
    got_kind, got_version = header.get(_KIND_KEY), header.get(_VERSION_KEY)
    if got_kind != kind:
        raise WireError(f"expected a {kind!r} payload, got {got_kind!r}")
    if got_version != str(WIRE_SCHEMA_VERSION):
        raise WireError(
            f"{kind} payload has schema version {got_version}, this robot_rl reads version {WIRE_SCHEMA_VERSION}: "
            "update the older side so actor and learner run the same robot_rl release"
        )
    return arrays, json.loads(header.get(_META_KEY, "{}"))


def _read_header(payload: bytes) -> dict[str, str]:
    if len(payload) < 8:
        raise WireError(f"payload of {len(payload)} bytes is too short to be safetensors")
    n = int.from_bytes(payload[:8], "little")
    if n <= 0 or 8 + n > len(payload):
        raise WireError(f"payload header length {n} does not fit in {len(payload)} bytes")
    try:
        return json.loads(bytes(payload[8 : 8 + n])).get("__metadata__", {})
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"payload header is not JSON: {e}") from None


def encode_episode(episode: dict[str, np.ndarray], meta: dict | None = None) -> bytes:
    """An episode as the episode store holds it (each value (T, ...)) -> bytes."""
    lengths = {k: len(v) for k, v in episode.items()}
    if len(set(lengths.values())) > 1:
        raise WireError(f"episode arrays must share their first dimension, got {lengths}")
    return encode("episode", episode, meta)


def decode_episode(payload: bytes) -> tuple[dict[str, np.ndarray], dict]:
    return decode(payload, "episode")
