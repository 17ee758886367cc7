"""Frame labels for reward classifiers, from real sim rollouts: derivation from the success key, edits in the
sidecar, balanced sampling, the contact sheet and `robot-rl reward label`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_rl import keys
from robot_rl.cli import main as cli_main
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.reward.collect import CollectConfig, collect_reward_data
from robot_rl.reward.labels import LABELS_FILE, StoreLabels, balanced_indices, frame_labels, parse_edit
from robot_rl.reward.sheet import contact_sheet


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """expert, no_grasp, drop, random, low_lift: 5 episodes of 30 steps, 64 px cameras."""
    path = tmp_path_factory.mktemp("reward") / "store"
    collect_reward_data(
        CollectConfig(
            "pick_cube",
            path,
            episodes=5,
            mix=("expert", "no_grasp", "drop", "random", "low_lift"),
            episode_steps=30,
            image_size=64,
            progress=False,
        )
    )
    return path


def test_a_frame_is_labelled_with_the_success_reported_with_its_observation_one_row_earlier():
    success = np.array([0, 0, 1, 1, 0], bool)
    assert frame_labels(success, "sim").tolist() == [0, 0, 0, 1, 1]
    assert frame_labels(success, "teleop").tolist() == [0, 0, 1, 1, 1]
    assert frame_labels(success, "operator").tolist() == [0, 0, 1, 1, 1]  # its name before the rename, still read
    with pytest.raises(ValueError, match="choose one of"):
        frame_labels(success, "vlm")


def test_sim_rollouts_give_positive_frames_only_after_ground_truth_success_and_none_without_a_grasp(store_path):
    store = EpisodeStore.open(store_path)
    labels = StoreLabels(store)
    success = [store.get_episode(i)[keys.SUCCESS] for i in range(4)]
    expert, no_grasp, drop, _ = (labels.episode(i) for i in range(4))
    first = int(np.argmax(success[0]))
    assert 10 <= first <= 25, f"the expert should lift the cube within 10..25 steps, first success at row {first}"
    assert expert[: first + 1].sum() == 0 and expert[first + 1 :].all()  # frame first+1 is the first showing success
    assert no_grasp.sum() == 0 and not success[1].any()
    assert drop.any() and drop[-1] == 0, "the dropping expert succeeds, then loses the cube"
    assert len(labels.table()[2]["flips"]) == 2
    low_lift = store.get_episode(4)
    lift_m = low_lift[keys.STATE][-1][2] - 0.02 - 0.002  # tool height -> cube bottom (grasped at its centre)
    assert labels.episode(4).sum() == 0 and 0.01 < lift_m < 0.04, (
        f"low_lift holds the cube {lift_m:.3f} m up, no success"
    )


def test_edits_are_kept_in_the_sidecar_applied_in_order_and_the_store_stays_appendable(store_path, tmp_path):
    store_path = Path(shutil.copytree(store_path, tmp_path / "copy"))
    store = EpisodeStore.open(store_path, mode="a")
    labels = StoreLabels(store)
    before = labels.episode(1).copy()
    labels.add(parse_edit("1:5-9=1"))
    labels.add(parse_edit("1:7=0"))
    labels.save()
    try:
        again = StoreLabels(EpisodeStore.open(store_path))
        assert again.episode(1)[4:11].tolist() == [0, 1, 1, 0, 1, 1, 0]
        assert again.derived(1).tolist() == before.tolist()
        assert json.loads((store_path / LABELS_FILE).read_text())["edits"][0] == {
            "episode": 1,
            "start": 5,
            "stop": 10,
            "value": 1,
        }
        with pytest.raises(ValueError, match="frames 0..29"):
            again.add(parse_edit("0:20-40=1"))
        with pytest.raises(ValueError, match="EP:FROM-TO=V"):
            parse_edit("1:5-9=yes")
        # a new episode gets derived labels; the sidecar did not become a step key
        ep = store.get_episode(0)
        steps = {k: v[:5] for k, v in ep.items()}
        steps[keys.SUCCESS] = np.array([0, 1, 1, 1, 1], bool)
        store.add_episode(steps)
        grown = StoreLabels(EpisodeStore.open(store_path))
        assert grown.n_episodes == 6 and grown.episode(5).tolist() == [0, 0, 1, 1, 1]
        assert grown.episode(1)[5] == 1
    finally:
        shutil.rmtree(store_path)


def test_balanced_sampling_draws_half_positives_from_a_skewed_set():
    labels = np.zeros(1000, np.uint8)
    labels[:50] = 1
    rows = balanced_indices(labels, 400, np.random.default_rng(0))
    assert labels[rows].sum() == 200 and len(np.unique(rows[labels[rows] == 0])) > 150
    with pytest.raises(ValueError, match="both labels"):
        balanced_indices(np.zeros(10, np.uint8), 4, np.random.default_rng(0))


def test_the_contact_sheet_shows_one_row_per_flip_and_one_per_episode_without_flips(store_path, tmp_path):
    labels = StoreLabels(EpisodeStore.open(store_path))
    n_rows = sum(max(1, len(r["flips"])) for r in labels.table())
    info = contact_sheet(labels, tmp_path / "sheet.png", context=2, size=48)
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert info["rows"] == n_rows and sheet.shape[0] == n_rows * (2 * 48 + 14 + 2)
    assert sheet.shape[1] == 40 + 5 * (48 + 2)


def test_robot_rl_reward_label_prints_the_table_and_saves_set_edits(store_path, capsys):
    try:
        assert cli_main(["reward", "label", str(store_path), "--set", "3:0-4=1"]) == 0
        out = capsys.readouterr().out
        assert "5 episodes, 150 frames" in out and "saved 1 edits" in out
        assert StoreLabels(EpisodeStore.open(store_path)).episode(3)[:5].tolist() == [1] * 5
        assert cli_main(["reward", "label", str(store_path), "--set", "9:0-4=1"]) == 1
        assert "out of range" in capsys.readouterr().err
    finally:
        (store_path / LABELS_FILE).unlink(missing_ok=True)


def test_labels_need_a_success_key(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", {"task": "x"})
    store.add_episode({keys.ACTION: np.zeros((3, 2), np.float32)})
    with pytest.raises(ValueError, match="no 'success' key"):
        StoreLabels(store)
    assert EpisodeRecorder  # the recorder writes the success key every store made here has
