"""EpisodeStore on real zarr directories: round trips, metadata, mismatches, damaged stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from robot_rl import keys
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.data.store import SCHEMA_VERSION, EpisodeStore, StoreError

META = {
    "task": "pick_cube",
    "control_rate_hz": 10.0,
    "cameras": {"front": {"K": [100.0, 0, 32, 0, 100.0, 32, 0, 0, 1]}},
}


def _make_episode(seed: int, length: int, image_hw: tuple[int, int] = (32, 40)) -> dict[str, np.ndarray]:
    """A synthetic episode with every step key, a state vector and one camera."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    return {
        keys.STATE: rng.standard_normal((length, 18)).astype(np.float32),
        keys.image_key("front"): rng.integers(0, 256, (length, h, w, 3), dtype=np.uint8),
        keys.ACTION: rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        keys.BASE_ACTION: np.zeros((length, 4), np.float32),
        keys.POLICY_ACTION: rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        keys.IS_INTERVENTION: rng.random(length) < 0.3,
        keys.REWARD: (rng.random(length) < 0.1).astype(np.float32),
        keys.TERMINATED: np.eye(1, length, length - 1, dtype=bool)[0],
        keys.TRUNCATED: np.zeros(length, bool),
        keys.SUCCESS: np.eye(1, length, length - 1, dtype=bool)[0],
        keys.T_CAPTURE: np.arange(length) * 0.1 + seed,
        keys.t_capture_key("front"): np.arange(length) * 0.1 + seed + 0.003,
    }


def _assert_same_episode(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        assert got[key].shape == want[key].shape, key
        assert got[key].tobytes() == want[key].tobytes(), key


def _store_with(tmp_path: Path, lengths: list[int]) -> tuple[Path, list[dict[str, np.ndarray]]]:
    path = tmp_path / "demos.zarr"
    store = EpisodeStore.create(path, META)
    episodes = [_make_episode(i, n) for i, n in enumerate(lengths)]
    for episode in episodes:
        store.add_episode(episode)
    return path, episodes


def test_episodes_round_trip_byte_identical_after_reopening(tmp_path):
    path, episodes = _store_with(tmp_path, [7, 13, 21])
    store = EpisodeStore.open(path)
    assert store.n_episodes == 3 and store.n_steps == 41
    assert store.episode_ends.tolist() == [7, 20, 41]
    assert store.episode_lengths.tolist() == [7, 13, 21]
    assert store.keys == tuple(sorted(episodes[0]))
    for i, episode in enumerate(episodes):
        _assert_same_episode(store.get_episode(i), episode)
    _assert_same_episode(store.get_episode(-1), episodes[2])
    _assert_same_episode(list(store.iter_episodes(start=1))[1], episodes[2])
    all_actions = np.concatenate([e[keys.ACTION] for e in episodes])
    assert store.get_key(keys.ACTION).tobytes() == all_actions.tobytes()


def test_metadata_is_kept_with_schema_version_and_time(tmp_path):
    path, _ = _store_with(tmp_path, [3])
    meta = EpisodeStore.open(path).meta
    assert meta["task"] == "pick_cube" and meta["control_rate_hz"] == 10.0
    assert meta["cameras"]["front"]["K"][0] == 100.0
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["created_utc"].startswith("20") and meta["robot_rl_version"]


def test_images_are_chunked_by_a_few_frames_and_compressed(tmp_path):
    path = tmp_path / "img.zarr"
    store = EpisodeStore.create(path, META)
    episode = _make_episode(0, 40, image_hw=(128, 128))
    episode[keys.image_key("front")][:] = 77  # flat images compress to almost nothing
    store.add_episode(episode)
    image = zarr.open_array(path / "data" / keys.image_key("front"), mode="r")
    assert image.chunks == (16, 128, 128, 3)
    assert store.nbytes_stored(keys.image_key("front")) < episode[keys.image_key("front")].nbytes / 50
    assert zarr.open_array(path / "data" / keys.ACTION, mode="r").chunks[0] >= 256


def test_episode_with_other_keys_or_shapes_is_refused_naming_the_key(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    store = EpisodeStore.open(path, mode="a")
    wrong_shape = _make_episode(1, 4)
    wrong_shape[keys.ACTION] = wrong_shape[keys.ACTION][:, :3]
    with pytest.raises(StoreError, match=r"'action' expected dtype/shape per step float32 \(4,\), got float32 \(3,\)"):
        store.add_episode(wrong_shape)
    wrong_dtype = _make_episode(1, 4)
    wrong_dtype[keys.REWARD] = wrong_dtype[keys.REWARD].astype(np.float64)
    with pytest.raises(StoreError, match=r"'reward' expected dtype/shape per step float32 \(\), got float64 \(\)"):
        store.add_episode(wrong_dtype)
    missing = _make_episode(1, 4)
    del missing[keys.SUCCESS]
    with pytest.raises(StoreError, match=r"missing \['success'\], unexpected \[\]"):
        store.add_episode(missing)
    ragged = _make_episode(1, 4)
    ragged[keys.REWARD] = ragged[keys.REWARD][:3]
    with pytest.raises(ValueError, match="same length T"):
        store.add_episode(ragged)
    assert EpisodeStore.open(path).n_episodes == 1  # nothing was written by the refused episodes


def test_read_only_store_refuses_to_append(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    with pytest.raises(StoreError, match="read-only"):
        EpisodeStore.open(path).add_episode(_make_episode(1, 3))


def test_create_refuses_an_existing_store_and_a_foreign_directory(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    with pytest.raises(StoreError, match="already holds"):
        EpisodeStore.create(path, META)
    assert EpisodeStore.create(path, META, exist_ok=True).n_episodes == 1
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(StoreError, match="not an empty directory"):
        EpisodeStore.create(foreign, META)
    assert (foreign / "cat.jpg").read_bytes() == b"meow"
    with pytest.raises(StoreError, match="not an episode store: it has no zarr.json"):
        EpisodeStore.open(foreign)
    with pytest.raises(StoreError, match="does not exist"):
        EpisodeStore.open(tmp_path / "nowhere")


def test_open_or_create_appends_only_with_compatible_metadata(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    store = EpisodeStore.open_or_create(path, {**META, "robot": "whatever"})
    assert store.add_episode(_make_episode(1, 6)) == 1
    store.close()  # one writer per store: the checks below open it for writing again
    with pytest.raises(StoreError, match="the store's 'task' is 'pick_cube' but the new episodes' is 'peg_insert'"):
        EpisodeStore.open_or_create(path, {**META, "task": "peg_insert"})
    with pytest.raises(StoreError, match="control_rate_hz"):
        EpisodeStore.open_or_create(path, {**META, "control_rate_hz": 20.0})
    scaled = EpisodeStore.open_or_create(tmp_path / "scaled.zarr", {**META, "action_scale": {"max_step_m": 0.025}})
    scaled.add_episode(_make_episode(2, 4))
    scaled.close()
    with pytest.raises(StoreError, match="action_scale"):  # the same action would mean half the motion
        EpisodeStore.open_or_create(tmp_path / "scaled.zarr", {**META, "action_scale": {"max_step_m": 0.0125}})
    fresh = EpisodeStore.open_or_create(tmp_path / "new.zarr", META)
    assert fresh.n_episodes == 0 and fresh.keys == ()


def _set_root_attr(path: Path, **attrs) -> None:
    zarr.open_group(path, mode="r+").attrs.update(attrs)


def test_wrong_schema_version_is_refused_naming_both_versions(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    _set_root_attr(path, schema_version=99)
    expected = rf"{path}: schema_version 99 is not supported .* reads schema_version {SCHEMA_VERSION}"
    with pytest.raises(StoreError, match=expected):
        EpisodeStore.open(path)


def test_missing_episode_ends_is_refused(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    shutil.rmtree(path / "meta" / "episode_ends")
    with pytest.raises(StoreError, match=r"index is lost: meta/episode_ends is missing; .* `robot-rl data repair "):
        EpisodeStore.open(path)


def test_decreasing_or_overlong_episode_ends_are_refused(tmp_path):
    path, _ = _store_with(tmp_path, [5, 6, 7])
    ends = zarr.open_array(path / "meta" / "episode_ends", mode="r+")
    ends[:3] = [5, 4, 18]  # (slot 3 is the pending one, -1)
    with pytest.raises(StoreError, match=r"strictly increasing .* entry 1 is 4 \(previous: 5\)"):
        EpisodeStore.open(path)
    ends[:3] = [5, 11, 30]
    with pytest.raises(StoreError, match=r"episode_ends\[-1\] = 30 is beyond the length of data/action \(18 rows\)"):
        EpisodeStore.open(path)


def test_corrupted_chunk_fails_with_the_store_path_and_key(tmp_path):
    path, _ = _store_with(tmp_path, [5, 6])
    chunk = path / "data" / keys.image_key("front") / "c" / "0" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    store = EpisodeStore.open(path)  # metadata is fine; the damage shows when the chunk is read
    with pytest.raises(StoreError, match=rf"{path}: data/image_front rows 0:5 are unreadable \(corrupt chunk\)"):
        store.get_episode(0)
    with pytest.raises(StoreError, match="data/image_front"):
        EpisodeStore.open(path, verify=True)


def test_missing_chunk_file_is_reported_not_read_as_zeros(tmp_path):
    path, _ = _store_with(tmp_path, [5])
    (path / "data" / keys.IS_INTERVENTION / "c" / "0").unlink()
    with pytest.raises(StoreError, match=r"data/is_intervention is damaged: chunk file .* is missing"):
        EpisodeStore.open(path).get_episode(0)


def test_zarr_group_without_schema_is_not_taken_for_a_store(tmp_path):
    zarr.open_group(tmp_path / "other.zarr", mode="w").create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(StoreError, match="not an episode store: it has no 'schema_version'"):
        EpisodeStore.open(tmp_path / "other.zarr")


def test_uncommitted_episode_ends_slot_is_ignored_then_reused(tmp_path):
    """A writer killed between growing episode_ends and writing its entry leaves a -1 slot."""
    path, episodes = _store_with(tmp_path, [5, 6])
    ends = zarr.open_array(path / "meta" / "episode_ends", mode="r+")
    ends.resize((3,))
    assert ends[:].tolist() == [5, 11, -1]
    store = EpisodeStore.open(path, mode="a")
    assert store.n_episodes == 2 and store.n_steps == 11
    extra = _make_episode(7, 4)
    assert store.add_episode(extra) == 2
    reopened = EpisodeStore.open(path)
    assert reopened.episode_ends.tolist() == [5, 11, 15]
    _assert_same_episode(reopened.get_episode(2), extra)
    _assert_same_episode(reopened.get_episode(0), episodes[0])


def test_memory_store_has_the_same_read_api_and_checks(tmp_path):
    path, episodes = _store_with(tmp_path, [4, 9])
    disk = EpisodeStore.open(path)
    memory = MemoryEpisodeStore(META)
    for episode in episodes:
        memory.add_episode(episode)
    assert memory.episode_ends.tolist() == disk.episode_ends.tolist()
    assert memory.keys == disk.keys and memory.n_steps == disk.n_steps == 13
    _assert_same_episode(memory.get_episode(-1), disk.get_episode(-1))
    assert memory.get_key(keys.STATE).tobytes() == disk.get_key(keys.STATE).tobytes()
    bad = _make_episode(2, 3)
    bad[keys.ACTION] = bad[keys.ACTION].astype(np.float64)
    with pytest.raises(ValueError, match="'action' expected dtype/shape per step float32"):
        memory.add_episode(bad)


def test_root_metadata_is_plain_json_on_disk(tmp_path):
    path, _ = _store_with(tmp_path, [2])
    on_disk = json.loads((path / "zarr.json").read_text())
    assert on_disk["zarr_format"] == 3 and on_disk["attributes"]["task"] == "pick_cube"


def test_reader_sees_episodes_appended_later_after_refresh(tmp_path):
    path, episodes = _store_with(tmp_path, [4])
    reader = EpisodeStore.open(path)
    writer = EpisodeStore.open(path, mode="a")
    late = _make_episode(5, 8)
    writer.add_episode(late)
    assert reader.n_episodes == 1  # a snapshot of what was committed when it was opened
    reader.refresh()
    assert reader.episode_lengths.tolist() == [4, 8]
    _assert_same_episode(reader.get_episode(1), late)
    from_iter = list(reader.iter_episodes())
    _assert_same_episode(from_iter[0], episodes[0])
    _assert_same_episode(from_iter[1], late)


@pytest.mark.parametrize("damaged", ["data/action", "meta/episode_ends"])
def test_damaged_array_metadata_is_refused_naming_the_array(tmp_path, damaged):
    path, _ = _store_with(tmp_path, [5])
    (path / damaged / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match=rf"{path}: (the episode index is lost: )?{damaged} has unreadable metadata"):
        EpisodeStore.open(path)


def test_a_bulk_append_stores_what_appending_one_by_one_does_and_a_misfit_adds_nothing(tmp_path):
    path, episodes = _store_with(tmp_path, [3, 7, 1])
    bulk = EpisodeStore.create(tmp_path / "bulk.zarr", META)
    assert bulk.add_episodes(episodes[:2]) == [0, 1] and bulk.add_episodes(episodes[2:]) == [2]
    bulk.close()
    one_by_one, at_once = EpisodeStore.open(path), EpisodeStore.open(tmp_path / "bulk.zarr", verify=True)
    assert at_once.episode_ends.tolist() == one_by_one.episode_ends.tolist() == [3, 10, 11]
    for i in range(3):
        _assert_same_episode(at_once.get_episode(i), one_by_one.get_episode(i))
    writer = EpisodeStore.open(tmp_path / "bulk.zarr", mode="a")
    misfit = _make_episode(9, 4)
    misfit[keys.STATE] = misfit[keys.STATE][:, :5]
    with pytest.raises(StoreError, match="key 'state' expected"):
        writer.add_episodes([_make_episode(8, 2), misfit])
    assert writer.n_episodes == 3 and writer.n_steps == 11
