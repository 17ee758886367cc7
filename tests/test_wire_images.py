"""Episode images cross the wire compressed per frame, come back bit-identical, and hostile frame tables are refused
before anything is allocated (robot_rl.wire, robot_rl.wire_frames)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from numcodecs import Zstd
from safetensors.numpy import save as st_save

from robot_rl import keys, wire
from robot_rl.wire import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, FRAMES_KEY, WireError, decode_episode, encode_episode
from robot_rl_sim.env import make_task_env


@pytest.fixture(scope="module")
def rendered_episode() -> dict[str, np.ndarray]:
    """12 steps of pick_cube with 2 rendered 128x128 cameras under random actions (as a warm-up actor records)."""
    env = make_task_env("pick_cube", obs_mode="pixels", image_size=128, cameras=("front", "wrist"))
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    frames = {"front": [], "wrist": []}
    for _ in range(12):
        for cam in frames:
            frames[cam].append(obs[keys.image_key(cam)])
        obs, *_ = env.step(rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32))
    env.close()
    T = 12
    return {keys.image_key(cam): np.stack(f) for cam, f in frames.items()} | {
        keys.STATE: rng.normal(size=(T, 18)).astype(np.float32),
        keys.ACTION: rng.uniform(-1, 1, size=(T, 4)).astype(np.float32),
        keys.REWARD: np.zeros(T, np.float32),
        keys.TERMINATED: np.arange(T) == T - 1,
    }


def _payload(tensors: dict[str, np.ndarray], frames: dict, kind: str = "episode") -> bytes:
    """A checksummed payload with a hand-made frame table (what a hostile or broken sender could put together)."""
    header = {
        "robot_rl.kind": kind,
        "robot_rl.schema_version": str(wire.WIRE_SCHEMA_VERSION),
        "robot_rl.meta": "{}",
        CHECKSUM_KEY: CHECKSUM_PLACEHOLDER,
        FRAMES_KEY: json.dumps(frames),
    }
    return wire.stamp_checksum(st_save(tensors, metadata=header))


def _blob(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), dtype=np.uint8)


def test_rendered_camera_frames_travel_at_least_5x_smaller_and_come_back_bit_identical(rendered_episode):
    raw = encode_episode(rendered_episode, {"index": 0}, compress_frames=False)
    packed = encode_episode(rendered_episode, {"index": 0})
    assert len(packed) * 5 < len(raw), (len(packed), len(raw))
    assert set(json.loads(wire.read_header(packed).metadata[FRAMES_KEY])) == {"image_front", "image_wrist"}
    back, meta = decode_episode(packed)
    assert meta == {"index": 0} and set(back) == set(rendered_episode)
    for key, value in rendered_episode.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        assert back[key].tobytes() == value.tobytes(), key


def test_frames_that_do_not_shrink_travel_raw_so_a_payload_never_grows():
    noise = np.random.default_rng(0).integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)
    episode = {keys.image_key("front"): noise, keys.REWARD: np.zeros(5, np.float32)}
    packed = encode_episode(episode)
    assert FRAMES_KEY not in wire.read_header(packed).metadata
    assert len(packed) <= len(encode_episode(episode, compress_frames=False))
    assert decode_episode(packed)[0][keys.image_key("front")].tobytes() == noise.tobytes()


def test_a_frame_table_declaring_more_than_the_reader_takes_is_refused_before_allocating():
    frame = Zstd(3).encode(np.zeros(64, np.uint8))
    huge = {"image_front": {"codec": "zstd", "shape": [1, 100_000, 100_000, 3], "frame_bytes": [len(frame)]}}
    payload = _payload({"image_front": _blob([frame])}, huge)
    t0 = time.perf_counter()
    with pytest.raises(WireError, match=r"decodes to 30000000000 bytes of arrays, more than the 1000000"):
        decode_episode(payload, max_decoded_bytes=1_000_000)
    with pytest.raises(WireError, match=r"more than the 1073741824"):  # the default cap
        decode_episode(payload)
    assert time.perf_counter() - t0 < 0.5  # nothing near 30 GB was touched


@pytest.mark.parametrize(
    "frames_of, table, message",
    [
        # a frame whose zstd header declares another size than one (16, 16, 3) frame: refused before decoding it
        (lambda z: [z.encode(np.zeros(1000, np.uint8))], {"shape": [1, 16, 16, 3]}, r"frame 0: declares 1000 bytes"),
        # the frames' lengths do not add up to the tensor
        (lambda z: [z.encode(np.zeros(768, np.uint8))], {"shape": [1, 16, 16, 3], "frame_bytes": [5]}, "declare 5"),
        # one length per frame, no more, no less
        (lambda z: [z.encode(np.zeros(768, np.uint8))], {"shape": [2, 16, 16, 3]}, "not a list of 2 ints"),
        # a codec this release does not read: names the ones it does
        (lambda z: [b"xx"], {"codec": "png", "shape": [1, 16, 16, 3]}, r"compressed with 'png', this robot_rl reads"),
        # bytes that are no zstd frame at all
        (lambda z: [b"\x28\xb5\x2f\xfd" + b"\x00" * 20], {"shape": [1, 16, 16, 3]}, "frame 0"),
        # a negative or non-integer dimension
        (lambda z: [b"xx"], {"shape": [1, -16, 16, 3]}, "is not 2..8 ints >= 0"),
    ],
)
def test_broken_or_hostile_frame_tables_are_refused_with_a_reason(frames_of, table, message):
    frames = frames_of(Zstd(3))
    entry = {"codec": "zstd", "frame_bytes": [len(f) for f in frames]} | table
    with pytest.raises(WireError, match=message):
        decode_episode(_payload({"image_front": _blob(frames)}, {"image_front": entry}))


def test_a_damaged_compressed_frame_is_refused_even_with_a_valid_checksum():
    image = (np.arange(2 * 32 * 32 * 3) % 251).astype(np.uint8).reshape(2, 32, 32, 3)
    packed = encode_episode({"image_front": image})
    table = json.loads(wire.read_header(packed).metadata[FRAMES_KEY])
    assert decode_episode(packed)[0]["image_front"].tobytes() == image.tobytes()
    frames = [bytearray(Zstd(3).encode(frame)) for frame in image]
    frames[1][-3] ^= 0xFF  # inside the compressed block, after the header; the CRC is restamped over it
    with pytest.raises(WireError, match="frame 1"):
        decode_episode(_payload({"image_front": _blob([bytes(f) for f in frames])}, table))


def test_a_compressed_array_must_be_one_flat_uint8_tensor():
    entry = {"codec": "zstd", "shape": [1, 16, 16, 3], "frame_bytes": [4]}
    with pytest.raises(WireError, match=r"must be a 1-d U8 tensor, got a F32 tensor"):
        decode_episode(_payload({"image_front": np.zeros(1, np.float32)}, {"image_front": entry}))
    with pytest.raises(WireError, match="no such tensor"):
        decode_episode(_payload({"reward": np.zeros(1, np.float32)}, {"image_front": entry}))
