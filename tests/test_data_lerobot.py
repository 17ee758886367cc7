"""`robot-rl data export|import --format lerobot`: LeRobotDataset v3.0 round trips on real files (sim demos, parquet, mp4)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data import lerobot_format as lr
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.lerobot_check import psnr_db
from robot_rl.data.lerobot_export import export_lerobot
from robot_rl.data.lerobot_import import import_lerobot
from robot_rl.data.store import EpisodeStore


@pytest.fixture(scope="module")
def pixel_store(tmp_path_factory):
    """3 scripted pick_cube episodes from the real sim, with both cameras (128 px)."""
    path = tmp_path_factory.mktemp("lerobot") / "demos.zarr"
    record_scripted_demos(DemoConfig(task="pick_cube", episodes=3, out=path, obs_mode="pixels", progress=False))
    return path


@pytest.fixture(scope="module")
def exported(pixel_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("lerobot") / "ds"
    assert main(["data", "export", str(pixel_store), "--format", "lerobot", "--out", str(out)]) == 0
    return out


def test_export_writes_the_v3_layout(pixel_store, exported):
    store = EpisodeStore.open(pixel_store)
    info = json.loads((exported / lr.INFO_PATH).read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["total_episodes"] == 3 and info["total_frames"] == store.n_steps and info["total_tasks"] == 1
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    front = info["features"]["observation.images.front"]
    assert front["dtype"] == "video" and front["shape"] == [128, 128, 3]
    assert front["info"]["video.codec"] == "h264" and front["info"]["video.pix_fmt"] == "yuv444p"
    assert info["features"]["observation.state"]["shape"] == [18]
    assert info["features"]["action"]["names"] == ["dx", "dy", "dz", "gripper"]
    for name in ("next.reward", "next.done", "success", "is_intervention", "policy_action", "base_action"):
        assert name in info["features"], name
    frames = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    assert frames.num_rows == store.n_steps and frames["index"].to_pylist() == list(range(store.n_steps))
    done_rows = np.flatnonzero(frames["next.done"].to_numpy(zero_copy_only=False))
    assert done_rows.tolist() == (store.episode_ends - 1).tolist()
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    ends = store.episode_ends.tolist()
    assert [e["dataset_to_index"] for e in episodes] == ends and [e["tasks"] for e in episodes] == [["pick_cube"]] * 3
    # the episodes lie back to back in each camera's one mp4: from/to timestamps in frames at 10 fps
    assert [e["videos/observation.images.wrist/from_timestamp"] for e in episodes] == [0.0, ends[0] / 10, ends[1] / 10]
    assert episodes[2]["videos/observation.images.wrist/to_timestamp"] == pytest.approx(ends[2] / 10)
    tasks = pq.read_table(exported / lr.TASKS_PATH)
    assert lr.task_strings(tasks) == ["pick_cube"] and b"pandas" in tasks.schema.metadata
    stats = json.loads((exported / lr.STATS_PATH).read_text())
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    # exact over every frame (the sum of the episodes' histograms), as the per-episode ones are
    front = store.get_key(keys.image_key("front")).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.asarray(stats["observation.images.front"]["mean"]).ravel(), front.mean(0), atol=1e-9)
    np.testing.assert_allclose(np.asarray(stats["observation.images.front"]["std"]).ravel(), front.std(0), atol=1e-9)
    assert stats["observation.images.front"]["count"] == [store.n_steps]
    assert stats["action"]["max"] == pytest.approx(store.get_key(keys.ACTION).max(0).tolist())
    assert set(stats["observation.state"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}


def test_round_trip_keeps_every_array_and_images_above_40_db(pixel_store, exported, tmp_path, capsys):
    back = tmp_path / "back.zarr"
    assert main(["data", "import", str(exported), "--format", "lerobot", "--out", str(back)]) == 0
    assert "3 episodes" in capsys.readouterr().out
    a, b = EpisodeStore.open(pixel_store), EpisodeStore.open(back, verify=True)
    assert b.spec == a.spec and b.episode_ends.tolist() == a.episode_ends.tolist()
    assert {k: v for k, v in b.meta.items() if k != "created_utc"} == {
        k: v for k, v in a.meta.items() if k != "created_utc"
    }
    worst = []
    for i in range(a.n_episodes):
        ea, eb = a.get_episode(i), b.get_episode(i)
        for key in ea:
            if keys.is_image_key(key):
                worst.append(psnr_db(ea[key], eb[key]).min())
            else:
                np.testing.assert_array_equal(eb[key], ea[key], err_msg=key)
    assert 40.0 <= min(worst) < 80.0  # lossy, but within codec loss (measured ~45 dB)


def _as_lerobot_made(exported, dst):
    """Our export rewritten as LeRobot's gym_manipulator records: no robot_rl extras, a discrete penalty column."""
    shutil.copytree(exported, dst)
    info = json.loads((dst / lr.INFO_PATH).read_text())
    del info[lr.META_KEY]
    extras = ["terminated", "next.truncated", "success", "is_intervention", "policy_action", "base_action"]
    extras += [k for k in info["features"] if k.startswith("t_capture")]
    for name in extras:
        del info["features"][name]
    info["features"]["complementary_info.discrete_penalty"] = {"dtype": "float32", "shape": [1], "names": None}
    (dst / lr.INFO_PATH).write_text(json.dumps(info))
    path = dst / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path).drop_columns(extras)
    table = table.append_column("complementary_info.discrete_penalty", pa.array(np.zeros(table.num_rows, np.float32)))
    pq.write_table(table, path)
    return info


def test_a_lerobot_made_layout_imports_with_our_defaults(exported, tmp_path):
    _as_lerobot_made(exported, tmp_path / "theirs")
    result = import_lerobot(tmp_path / "theirs", tmp_path / "store.zarr")
    assert result.dropped == ("complementary_info.discrete_penalty",) and result.cameras == ("front", "wrist")
    store = EpisodeStore.open(tmp_path / "store.zarr", verify=True)  # end flags only at episode ends
    assert set(keys.STEP_KEYS) <= set(store.keys)
    assert store.meta["source"] == "lerobot" and store.meta["control_rate_hz"] == 10.0
    assert store.meta["cameras"] == {"front": {"height": 128, "width": 128}, "wrist": {"height": 128, "width": 128}}
    ends = store.episode_ends - 1
    assert np.flatnonzero(store.get_key(keys.TERMINATED)).tolist() == ends.tolist()  # next.done -> terminated
    assert not store.get_key(keys.TRUNCATED).any() and not store.get_key(keys.IS_INTERVENTION).any()
    np.testing.assert_array_equal(store.get_key(keys.POLICY_ACTION), store.get_key(keys.ACTION))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda info: info.update(codebase_version="v2.1"), "v2.1; this reads v3.0 only"),
        (
            lambda info: info["features"].update({"observation.environment_state": {"dtype": "float32", "shape": [3]}}),
            "'observation.environment_state' cannot map",
        ),
        (lambda info: info["features"].pop("action"), "has no 'action' feature"),
    ],
)
def test_a_layout_that_cannot_map_is_refused_in_one_line(exported, tmp_path, capsys, edit, message):
    info = _as_lerobot_made(exported, tmp_path / "theirs")
    edit(info)
    (tmp_path / "theirs" / lr.INFO_PATH).write_text(json.dumps(info))
    assert main(["data", "import", str(tmp_path / "theirs"), "--format", "lerobot", "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("robot-rl: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "s").exists()


def test_export_refuses_a_fractional_rate_and_a_used_directory(pixel_store, exported, tmp_path):
    with pytest.raises(lr.LeRobotFormatError, match="whole number"):
        export_lerobot(pixel_store, tmp_path / "x", fps=7.5)
    with pytest.raises(lr.LeRobotFormatError, match="not an empty directory"):
        export_lerobot(pixel_store, exported)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".*exporting"))


def test_our_colour_conversion_decodes_as_ffmpeg_does_and_other_formats_fall_back_to_it(pixel_store, tmp_path):
    """Our own BT.601 conversion (a cv2.transform per file) against swscale's, which LeRobot's PyAV decoding uses;
    a yuv420p stream (what LeRobot itself writes) takes swscale's path."""
    import av

    from robot_rl.data.lerobot_video import VideoCodec, VideoWriter, read_frames

    frames = EpisodeStore.open(pixel_store).get_key(keys.image_key("front"))  # (N, 128, 128, 3)
    for pix_fmt, min_db in (("yuv444p", 44.0), ("yuv420p", 30.0)):
        path = tmp_path / f"{pix_fmt}.mp4"
        with VideoWriter(path, 10, 128, 128, VideoCodec(pix_fmt=pix_fmt)) as writer:
            writer.write(frames)
        times, ours = read_frames(path)
        with av.open(str(path)) as container:
            ffmpeg = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        assert times.tolist() == pytest.approx(np.arange(len(frames)) / 10)
        assert psnr_db(frames, ours).min() >= min_db, pix_fmt
        # our rounding is exact where swscale's fixed point is off by a level or two
        assert np.abs(ours.astype(int) - ffmpeg.astype(int)).max() <= 3, pix_fmt
        assert psnr_db(ours, ffmpeg).min() >= 45.0, pix_fmt


def test_an_export_read_in_several_blocks_writes_the_same_dataset_as_in_one(
    pixel_store, exported, tmp_path, monkeypatch
):
    """The export reads runs of whole episodes at once (`_blocks`: 3 small episodes make one run); with one episode
    per run (the encoders then a run behind the tables) the parquet and json files are equal and the frames too."""
    from robot_rl.data import lerobot_export
    from robot_rl.data.lerobot_video import read_frames

    store = EpisodeStore.open(pixel_store)
    cameras = (keys.image_key("front"), keys.image_key("wrist"))
    assert [(first, lengths) for first, _, lengths in lerobot_export._blocks(store, cameras)] == [
        (0, store.episode_lengths.tolist())
    ]
    monkeypatch.setattr(lerobot_export, "BLOCK_IMAGE_BYTES", 128 * 128 * 3 * 2)  # one row of both cameras
    runs = list(lerobot_export._blocks(store, cameras))
    assert [(first, lengths) for first, _, lengths in runs] == [(i, [n]) for i, n in enumerate(store.episode_lengths)]
    np.testing.assert_array_equal(runs[1][1][cameras[0]], store.get_episode(1)[cameras[0]])
    split = tmp_path / "split"
    export_lerobot(pixel_store, split)
    for rel in ("data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet"):
        assert pq.read_table(split / rel).equals(pq.read_table(exported / rel)), rel
    for rel in (lr.STATS_PATH, lr.INFO_PATH):
        assert json.loads((split / rel).read_text()) == json.loads((exported / rel).read_text()), rel
    for mp4 in exported.glob("videos/*/chunk-000/file-000.mp4"):
        (t1, f1), (t2, f2) = read_frames(mp4), read_frames(split / mp4.relative_to(exported))
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(f1, f2)


def test_frames_of_a_width_ffmpeg_pads_round_trip(tmp_path):
    """100 px rows are padded to 112 bytes in FFmpeg's planes: the writer falls back to `from_ndarray` and the
    reader drops the padding, so the frames come back whole and within 40 dB."""
    from robot_rl.data.lerobot_video import VideoWriter, read_frames

    y, x = np.mgrid[0:60, 0:100]
    frames = np.stack([np.stack([(x * 2 + t) % 256, (y * 4) % 256, (x + y + 3 * t) % 256], -1) for t in range(12)])
    frames = frames.astype(np.uint8)
    with VideoWriter(tmp_path / "odd.mp4", 10, 60, 100) as writer:
        writer.write(frames[:5])
        writer.write(frames[5:])
    for threads in (0, 1):
        times, back = read_frames(tmp_path / "odd.mp4", threads)
        assert back.shape == frames.shape and times.tolist() == pytest.approx(np.arange(12) / 10)
        assert psnr_db(frames, back).min() >= 40.0


def test_the_round_trip_benchmark_reports_equal_arrays_and_its_timings(pixel_store, capsys):
    from robot_rl.data.lerobot_bench import main as bench

    assert bench([str(pixel_store), "--repeats", "1", "--table"]) == 0
    line, table = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert result["equal"] and result["differ"] == [] and min(result["min_psnr_db"].values()) >= 40.0
    assert result["episodes"] == 3 and result["read_s"] > 0 and result["export_s"] > 0 and result["import_s"] > 0
    round_trip = result["export_s"] + result["import_s"]  # the ratios are of these timings (no order between reads:
    # on a 3-episode store the bulk read is not reliably the faster one)
    assert result["read_bulk_s"] > 0
    assert result["round_trip_over_read"] == pytest.approx(round_trip / result["read_s"], rel=0.1)
    assert result["round_trip_over_read_bulk"] == pytest.approx(round_trip / result["read_bulk_s"], rel=0.1)
    assert "arrays equal" in table and "a bulk read" in table


def test_data_view_reads_a_lerobot_directory_through_its_import(pixel_store, exported, tmp_path, monkeypatch, capsys):
    import tempfile

    from test_viz import _rrd_rows, _rrd_series

    from robot_rl.data.video import read_mp4

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the temporary store goes (and must go away)
    monkeypatch.chdir(tmp_path)
    store = EpisodeStore.open(pixel_store)
    lengths = store.episode_lengths.tolist()
    assert main(["data", "view", str(exported), "--episode", "1", "--camera-height", "64"]) == 0
    assert f"wrote ds_episode_1.mp4: episode 1, {lengths[1]} frames" in capsys.readouterr().out
    assert len(read_mp4(tmp_path / "ds_episode_1.mp4")) == lengths[1]
    assert main(["data", "view", str(exported), "--rerun", "--episodes", "0,2"]) == 0
    out = capsys.readouterr().out
    assert f"wrote ds.rrd: episodes 0,2 (2), {lengths[0] + lengths[2]} steps, cameras front, wrist" in out
    assert "(read by the LeRobotDataset import)" in out
    rows = _rrd_rows(tmp_path / "ds.rrd")
    assert rows["cameras/front"] == rows["signals/reward"] == lengths[0] + lengths[2]
    # the store's rows and values: episode 2 starts at row lengths[0] + lengths[1], as in the store
    picked = np.r_[0 : lengths[0], sum(lengths[:2]) : sum(lengths)]
    dx = store.get_key(keys.ACTION)[:, 0]
    assert _rrd_series(tmp_path / "ds.rrd", "action/dx/executed") == {int(r): float(dx[r]) for r in picked}
    assert not list(tmp_path.glob("robot-rl-read-*"))  # the temporary store was removed


def test_the_made_by_lerobot_check_hands_lerobot_our_episodes_as_its_features(pixel_store):
    """The inputs `python -m robot_rl.data.lerobot_peer_made` gives LeRobot's writer (which runs in the peers venv)."""
    from robot_rl.data.lerobot_peer_made import compare_import, lerobot_inputs

    store = EpisodeStore.open(pixel_store)
    spec, data = lerobot_inputs(store)
    assert (spec["fps"], spec["task"]) == (10, "pick_cube")
    assert set(spec["features"]) == {"observation.state", "action", "next.reward", "next.done",
                                     "observation.images.front", "observation.images.wrist"}  # fmt: skip
    assert spec["features"]["observation.images.front"] == {
        "dtype": "video", "shape": [128, 128, 3], "names": ["height", "width", "channels"]}  # fmt: skip
    assert spec["features"]["action"]["names"] == ["dx", "dy", "dz", "gripper"]
    assert (
        data["next.done"].shape == (store.n_steps, 1)
        and np.flatnonzero(data["next.done"]).tolist() == (store.episode_ends - 1).tolist()
    )
    np.testing.assert_array_equal(data["observation.state"], store.get_key(keys.STATE))
    same = compare_import(store, store, 40.0)
    assert same["problems"] == [] and same["min_psnr_db"] == {"image_front": np.inf, "image_wrist": np.inf}
