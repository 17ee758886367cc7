"""`robot-rl data info|view` and `robot-rl demos record` on real stores (synthetic and from the sim)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_store import META, _make_episode

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.data.video import read_mp4


@pytest.fixture
def synthetic_store(tmp_path):
    path = tmp_path / "synthetic.zarr"
    store = EpisodeStore.create(path, META)
    for i, length in enumerate((6, 9, 12)):
        episode = _make_episode(i, length, image_hw=(48, 64))
        episode[keys.SUCCESS][:] = i != 1  # episode 1 never succeeds
        episode[keys.IS_INTERVENTION][:] = np.arange(length) < 3  # 3 intervention steps per episode
        store.add_episode(episode)
    return path


def test_info_prints_counts_rates_and_keys(synthetic_store, capsys):
    assert main(["data", "info", str(synthetic_store)]) == 0
    text = capsys.readouterr().out
    assert "episodes         3   steps 27" in text
    assert "episode length   min 6  mean 9.0  max 12" in text
    assert "success rate     66.7 % (2/3 episodes)" in text
    assert "intervention     33.3 % of steps" in text
    assert "camera           front: 48x64x3  K=[100.0" in text
    assert "image_front            (48, 64, 3)" in text


def test_info_json_is_machine_readable(synthetic_store, capsys):
    assert main(["data", "info", str(synthetic_store), "--json", "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 3 and info["steps"] == 27 and info["task"] == "pick_cube"
    assert info["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert info["intervention_rate"] == pytest.approx(9 / 27, abs=1e-4)
    assert info["episode_length"] == {"min": 6, "mean": 9.0, "max": 12}
    assert info["keys"][keys.image_key("front")]["step_shape"] == [48, 64, 3]
    assert info["keys"][keys.ACTION]["dtype"] == "float32"
    assert info["stored_bytes"] == sum(k["stored_bytes"] for k in info["keys"].values()) > 27 * 48 * 64 * 3 / 2


def test_info_on_a_missing_store_fails_with_the_path(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nope")]) == 1
    assert f"no episode store at {tmp_path / 'nope'}" in capsys.readouterr().err


def test_view_writes_a_decodable_mp4_with_one_frame_per_step(synthetic_store, tmp_path, capsys):
    out = tmp_path / "ep1.mp4"
    assert (
        main(["data", "view", str(synthetic_store), "--episode", "1", "--out", str(out), "--camera-height", "96"]) == 0
    )
    assert f"wrote {out}: episode 1, 9 frames" in capsys.readouterr().out
    frames = read_mp4(out)
    assert len(frames) == 9
    height, width, _ = frames[0].shape
    assert width == 320 and height > 96  # one 64x48 camera scaled to 128x96 (min width 320), strip below
    # the cursor moves: the strip differs between the first and the last frame
    assert np.abs(frames[0][96:].astype(int) - frames[-1][96:].astype(int)).sum() > 0
    assert main(["data", "view", str(synthetic_store), "--episode", "5", "--out", str(out)]) == 2  # usage error
    assert "episode 5 out of range" in capsys.readouterr().err


def test_demos_record_writes_scripted_pick_cube_episodes_then_appends(tmp_path, capsys):
    out = tmp_path / "demos"
    argv = [
        "demos",
        "record",
        "--task",
        "pick_cube",
        "--scripted",
        "--episodes",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--obs",
        "pixels",
    ]
    assert main(argv) == 0
    assert "recorded 2 episodes" in capsys.readouterr().out
    store = EpisodeStore.open(out)
    assert store.n_episodes == 2 and store.meta["task"] == "pick_cube" and store.meta["obs_mode"] == "pixels"
    assert set(keys.STEP_KEYS) | {keys.STATE, "image_front", "image_wrist"} <= set(store.keys)
    ep = store.get_episode(0)
    assert ep[keys.SUCCESS].any() and ep[keys.REWARD].sum() >= 1.0
    assert ep["image_front"].shape[1:] == (128, 128, 3) and ep["image_front"].std() > 5  # a real rendered scene
    assert np.all(np.diff(ep[keys.T_CAPTURE]) > 0)  # sim time advances each step

    assert main([*argv[:6], "1", *argv[7:], "--seed", "7"]) == 0  # append one more
    assert EpisodeStore.open(out).n_episodes == 3
    assert main([*argv, "--obs", "state"]) == 1  # a state-only store is another dataset
    assert "the store's 'obs_mode' is 'pixels' but the new episodes' is 'state'" in capsys.readouterr().err


def test_write_mp4_pads_odd_sizes_and_keeps_colours(tmp_path):
    from robot_rl.data.video import write_mp4

    frames = [np.zeros((33, 47, 3), np.uint8) for _ in range(5)]
    for i, frame in enumerate(frames):
        frame[:, :, 0] = 200  # red background
        frame[:, : 8 * (i + 1), 2] = 255  # a blue-ish band that grows
    assert write_mp4(frames, tmp_path / "odd.mp4", fps=10) == 5
    decoded = read_mp4(tmp_path / "odd.mp4")
    assert len(decoded) == 5 and decoded[0].shape == (34, 48, 3)
    assert abs(float(decoded[2][16, 40, 0]) - 200) < 25 and decoded[2][16, 40, 2] < 60  # red outside the band
    assert decoded[4][16, 20, 2] > 190  # inside the band
    with pytest.raises(ValueError, match=r"RGB uint8 \(H, W, 3\); got float32"):
        write_mp4([np.zeros((8, 8, 3), np.float32)], tmp_path / "bad.mp4", fps=10)


def test_keep_failures_stores_every_attempt_with_its_success_flag(tmp_path):
    from robot_rl.data.demos import DemoConfig, record_scripted_demos
    from robot_rl.data.summary import summarize

    cfg = DemoConfig(
        task="pick_cube",
        episodes=3,
        out=tmp_path / "noisy",
        obs_mode="state",
        seed=11,
        keep_failures=True,
        noise=1.5,
        progress=False,
    )
    result = record_scripted_demos(cfg)
    assert result.added == result.attempts == 3  # nothing discarded, successful or not
    summary = summarize(EpisodeStore.open(cfg.out))
    assert summary["episodes"] == 3 and summary["successful_episodes"] == result.successes
    assert summary["obs_mode"] == "state" and summary["cameras"] == {}
