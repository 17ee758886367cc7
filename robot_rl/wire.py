"""Payloads with no standard ROS message type (episodes, policies), as self-describing safetensors bytes.

Safetensors holds only arrays and a string-to-string metadata header, so decoding never
executes anything. Every payload names its kind and a schema version; a reader refuses a
payload of another kind or version with a message that says which it got and which it reads.
The bytes travel in `std_msgs/UInt8MultiArray` between actor and learner nodes.

Nothing that arrives is trusted: `read_header` parses and bound-checks the header itself before
any array is built (header length cap, known dtypes, non-negative int shapes, a cap on the number
of tensors, offsets that tile the data section exactly), so a small payload that declares a huge
tensor is refused in microseconds and decoding never allocates more than the payload's own size.
A CRC-32 of every byte of the payload (with the checksum's own 8 hex digits read as zeros) sits in
the metadata, so any flipped byte, in the header or in the data, is detected.

Episodes' image arrays (uint8 (T, H, W[, C])) travel compressed, losslessly, frame by frame (`robot_rl.wire_frames`:
zstd, ~11x smaller for sim camera frames): such a tensor is a 1-d uint8 blob and FRAMES_KEY in the metadata names,
per array, the codec, the decoded shape and each frame's compressed length. A reader refuses a codec it does not
know, checks every entry against its tensor, and caps the decoded total (`max_decoded_bytes`) before allocating.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass

import numpy as np
from safetensors.numpy import save as st_save

from robot_rl import wire_frames

WIRE_SCHEMA_VERSION = 3  # 2: payloads carry CHECKSUM_KEY; 3: arrays may be compressed per frame (FRAMES_KEY)
_KIND_KEY, _VERSION_KEY, _META_KEY = "robot_rl.kind", "robot_rl.schema_version", "robot_rl.meta"
CHECKSUM_KEY = "robot_rl.crc32"
FRAMES_KEY = "robot_rl.frames"  # JSON {array name: wire_frames.FrameEntry} of the arrays sent compressed
MAX_DECODED_BYTES = 1 << 30  # default cap on the arrays one payload decodes to (the learner passes its layout's)
CHECKSUM_PLACEHOLDER = "0" * 8  # what `encode` writes before `stamp_checksum` fills in the CRC
MAX_HEADER_BYTES = 1 << 20  # 1 MiB of JSON: far above any real header (a policy's is a few kB)
MAX_TENSORS = 4096
MAX_NDIM = 8

# safetensors dtype -> bytes per element; numpy reads those with a numpy dtype (little-endian on the wire)
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_NUMPY_DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "U16": "<u2",
    "F16": "<f2",
    "I32": "<i4",
    "U32": "<u4",
    "F32": "<f4",
    "I64": "<i8",
    "U64": "<u8",
    "F64": "<f8",
}


class WireError(ValueError):
    """A payload that cannot be read: wrong kind, wrong version, bad checksum, or not a robot_rl payload."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in a checked header; `start`/`end` are byte offsets into the whole payload."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]


def encode(
    kind: str, arrays: dict[str, np.ndarray], meta: dict | None = None, *, compress_frames: bool = False
) -> bytes:
    """Arrays (any numeric dtype or bool) plus JSON-able metadata -> checksummed bytes. With `compress_frames`,
    uint8 arrays of frames (`wire_frames.compressible`) travel compressed per frame where that is smaller."""
    clean, frames = {}, {}
    for key, value in arrays.items():
        arr = np.ascontiguousarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise WireError(f"array {key!r} has dtype {arr.dtype}; only numeric and bool arrays can be sent")
        packed = wire_frames.compress_frames(arr) if compress_frames and wire_frames.compressible(arr) else None
        if packed is not None:
            clean[key], entry = packed
            frames[key] = entry.to_json()
        else:
            clean[key] = arr
    header = {
        _KIND_KEY: kind,
        _VERSION_KEY: str(WIRE_SCHEMA_VERSION),
        _META_KEY: json.dumps(meta or {}),
        CHECKSUM_KEY: CHECKSUM_PLACEHOLDER,
    }
    if frames:
        header[FRAMES_KEY] = json.dumps(frames)
    return stamp_checksum(st_save(clean, metadata=header))


def decode(payload: bytes, kind: str, max_decoded_bytes: int = MAX_DECODED_BYTES) -> tuple[dict[str, np.ndarray], dict]:
    """bytes -> (arrays, meta); refuses another kind or schema version, a bad checksum, a malformed header, or
    arrays that would decode to more than `max_decoded_bytes` in all (checked before anything is allocated)."""
    payload = bytes(payload)
    header = read_header(payload, require_checksum=False)
    got_kind, got_version = header.metadata.get(_KIND_KEY), header.metadata.get(_VERSION_KEY)
    if got_kind != kind:
        raise WireError(f"expected a {kind!r} payload, got {got_kind!r}")
    if got_version != str(WIRE_SCHEMA_VERSION):
        raise WireError(
            f"{kind} payload has schema version {got_version}, this robot_rl reads version {WIRE_SCHEMA_VERSION}: "
            "update the older side so actor and learner run the same robot_rl release"
        )
    verify_checksum(payload, header.metadata)
    frames = _frame_entries(header, kind, max_decoded_bytes)
    arrays = {}
    for name, t in header.tensors.items():
        if t.dtype not in _NUMPY_DTYPES:
            raise WireError(f"tensor {name!r} has dtype {t.dtype}, which numpy payloads do not carry")
        if name in frames:
            try:
                arrays[name] = wire_frames.decompress_frames(memoryview(payload)[t.start : t.end], frames[name], name)
            except wire_frames.FrameError as e:
                raise WireError(f"{kind} payload: {e}") from None
            continue
        dtype = np.dtype(_NUMPY_DTYPES[t.dtype])
        count = (t.end - t.start) // dtype.itemsize
        arrays[name] = np.frombuffer(payload, dtype, count, t.start).reshape(t.shape).astype(dtype.newbyteorder("="))
    try:
        meta = json.loads(header.metadata.get(_META_KEY, "{}"))
    except (ValueError, RecursionError) as e:
        raise WireError(f"{kind} payload metadata is not JSON: {e}") from None
    if not isinstance(meta, dict):
        raise WireError(f"{kind} payload metadata is a {type(meta).__name__}, not a JSON object")
    return arrays, meta


def _frame_entries(header: Header, kind: str, max_decoded_bytes: int) -> dict[str, wire_frames.FrameEntry]:
    """The payload's compressed arrays, each checked against its tensor (a 1-d U8 blob), and the decoded total of
    all arrays checked against `max_decoded_bytes`; raises WireError."""
    try:
        frames = wire_frames.parse_entries(header.metadata.get(FRAMES_KEY, "{}"), MAX_NDIM)
    except wire_frames.FrameError as e:
        raise WireError(f"{kind} payload: {e}") from None
    for name in frames:
        t = header.tensors.get(name)
        if t is None or t.dtype != "U8" or len(t.shape) != 1:
            got = "no such tensor" if t is None else f"a {t.dtype} tensor of shape {list(t.shape)}"
            raise WireError(f"{kind} payload: compressed array {name!r} must be a 1-d U8 tensor, got {got}")
    total = sum(frames[name].decoded_bytes if name in frames else t.end - t.start for name, t in header.tensors.items())
    if total > max_decoded_bytes:
        raise WireError(
            f"{kind} payload decodes to {total} bytes of arrays, more than the {max_decoded_bytes} this reader takes"
        )
    return frames


def read_header(payload: bytes, *, max_tensors: int = MAX_TENSORS, require_checksum: bool = True) -> Header:
    """Parse and bound-check a safetensors header without building any array (cost: the header's size).

    Raises WireError unless: the header fits its caps and is a JSON object; every tensor has a known dtype,
    at most MAX_NDIM non-negative int dims, and offsets whose span equals its declared size; the tensors
    tile the data section exactly. With `require_checksum`, the payload's CRC must match too.
    """
    if len(payload) < 8:
        raise WireError(f"payload of {len(payload)} bytes is too short to be safetensors")
    n = int.from_bytes(payload[:8], "little")
    if n < 2 or n > MAX_HEADER_BYTES or 8 + n > len(payload):
        raise WireError(f"payload header length {n} does not fit in {len(payload)} bytes (cap {MAX_HEADER_BYTES})")
    try:
        raw = json.loads(bytes(payload[8 : 8 + n]))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise WireError(f"payload header is not JSON: {str(e)[:200]}") from None
    if not isinstance(raw, dict):
        raise WireError(f"payload header is a JSON {type(raw).__name__}, not an object")
    metadata = raw.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WireError("payload metadata is not a string-to-string object")
    if len(raw) > max_tensors:
        raise WireError(f"payload declares {len(raw)} tensors; at most {max_tensors} are read")
    data_start, data_len = 8 + n, len(payload) - 8 - n
    tensors = {name: _tensor_info(name, entry, data_start, data_len) for name, entry in raw.items()}
    covered = data_start
    for name, t in sorted(tensors.items(), key=lambda kv: (kv[1].start, kv[1].end)):
        if t.start != covered:
            raise WireError(
                f"tensor {name!r} starts at byte {t.start - data_start} of the data, expected "
                f"{covered - data_start}: tensors must tile the data section"
            )
        covered = t.end
    if covered != len(payload):
        raise WireError(f"tensors declare {covered - data_start} bytes, the data section holds {data_len}")
    header = Header(tensors, metadata)
    if require_checksum:
        verify_checksum(payload, metadata)
    return header


def _tensor_info(name: str, entry, data_start: int, data_len: int) -> TensorInfo:
    """One header entry, checked: known dtype, int dims >= 0, offsets inside the data and matching the size."""
    if not isinstance(entry, dict):
        raise WireError(f"tensor {name!r}: header entry is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise WireError(f"tensor {name!r}: unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_count(d) for d in shape):
        raise WireError(f"tensor {name!r}: shape {str(shape)[:80]} is not a list of at most {MAX_NDIM} ints >= 0")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise WireError(f"tensor {name!r}: data_offsets {str(offsets)[:80]} is not [begin, end]")
    begin, end = offsets
    nbytes = math.prod(shape) * DTYPE_BYTES[dtype]  # Python ints: a declared 10^12 elements cannot overflow
    if not begin <= end <= data_len or end - begin != nbytes:
        raise WireError(
            f"tensor {name!r}: shape {shape} of {dtype} declares {nbytes} bytes, offsets [{begin}, {end}] "
            f"of a {data_len}-byte data section"
        )
    return TensorInfo(dtype, tuple(shape), data_start + begin, data_start + end)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _checksum_field(value: str) -> bytes:
    return f'"{CHECKSUM_KEY}":"{value}"'.encode()


def _crc_with_placeholder(payload: bytes, field_at: int, field_len: int) -> int:
    """CRC-32 of the payload with the checksum field's value read as CHECKSUM_PLACEHOLDER (no copy)."""
    view = memoryview(payload)
    crc = zlib.crc32(view[:field_at])
    crc = zlib.crc32(_checksum_field(CHECKSUM_PLACEHOLDER), crc)
    return zlib.crc32(view[field_at + field_len :], crc)


def _find_field(payload: bytes, value: str) -> int:
    """Where the one checksum field with this value sits in the header; raises WireError unless exactly once."""
    n = int.from_bytes(payload[:8], "little")
    field = _checksum_field(value)
    at = payload.find(field, 8, 8 + n)
    if at < 0 or payload.find(field, at + 1, 8 + n) >= 0:
        raise WireError(f"payload header does not hold exactly one {CHECKSUM_KEY} field")
    return at


def stamp_checksum(payload: bytes) -> bytes:
    """Safetensors bytes whose metadata holds CHECKSUM_KEY = CHECKSUM_PLACEHOLDER -> the same bytes, checksummed."""
    at = _find_field(payload, CHECKSUM_PLACEHOLDER)
    field = _checksum_field(CHECKSUM_PLACEHOLDER)
    crc = _crc_with_placeholder(payload, at, len(field))
    return payload[:at] + _checksum_field(f"{crc:08x}") + payload[at + len(field) :]


def verify_checksum(payload: bytes, metadata: dict[str, str] | None = None) -> None:
    """Raises WireError unless the payload's CRC-32 matches the one in its metadata."""
    if metadata is None:
        metadata = read_header(payload, require_checksum=False).metadata
    value = metadata.get(CHECKSUM_KEY)
    if not isinstance(value, str) or len(value) != 8 or any(c not in "0123456789abcdef" for c in value):
        raise WireError(f"payload carries no valid {CHECKSUM_KEY} checksum (made by an older robot_rl, or damaged)")
    at = _find_field(payload, value)
    crc = _crc_with_placeholder(payload, at, len(_checksum_field(value)))
    if f"{crc:08x}" != value:
        raise WireError(f"payload checksum mismatch (stored {value}, computed {crc:08x}): the bytes were damaged")


def encode_episode(episode: dict[str, np.ndarray], meta: dict | None = None, *, compress_frames: bool = True) -> bytes:
    """An episode as the episode store holds it (each value (T, ...)) -> bytes; image arrays compressed per frame."""
    _check_lengths(episode)
    return encode("episode", episode, meta, compress_frames=compress_frames)


def decode_episode(payload: bytes, max_decoded_bytes: int = MAX_DECODED_BYTES) -> tuple[dict[str, np.ndarray], dict]:
    """bytes -> (episode arrays sharing their first dimension, meta); raises WireError."""
    arrays, meta = decode(payload, "episode", max_decoded_bytes)
    _check_lengths(arrays)
    return arrays, meta


def _check_lengths(episode: dict[str, np.ndarray]) -> None:
    if any(np.ndim(v) == 0 for v in episode.values()):
        raise WireError(
            f"episode arrays must be (T, ...); got scalars {[k for k, v in episode.items() if np.ndim(v) == 0]}"
        )
    lengths = {k: len(v) for k, v in episode.items()}
    if len(set(lengths.values())) > 1:
        raise WireError(f"episode arrays must share their first dimension, got {lengths}")
