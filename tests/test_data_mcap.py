"""rosbag2 MCAP bags without DDS: a bag of the robot's topics written here (20 Hz state, the actor's message types)
is resampled into episodes at 10 Hz by the rules `--segment-on success` and `--episode-s`; stale inputs pause;
refusals are one line; `data info` reads bags and LeRobot directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from std_msgs.msg import Bool

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.data.mcap_import import import_rosbag2
from robot_rl.data.store import EpisodeStore
from robot_rl.interfaces import EECommand
from robot_rl.nodes.actor_record import McapRecorder, episode_msg
from robot_rl.ros import convert, task_convert

BIN = Path(sys.executable).parent
LAYOUT = ActorConfig().layout()  # pick_cube, state, 10 Hz
JOINTS = LAYOUT.joint_names
NS = "/robot_9/"
NS_ = 1_000_000_000


def _make_bag(path: Path, duration_s: float = 4.0, success_s=(1.0, 1.3), gap_s=None, markers=()) -> Path:
    """State topics at 20 Hz from t = 10 s; joint q[0] = the sample's stamp (so a test can see which one was used);
    task/success true in [success_s); no joint_states in [gap_s); ee_command at 10 Hz with vx = 0.1 m/s."""
    rec = McapRecorder(path, ActorConfig())
    t0 = 10.0
    for i in range(int(duration_s * 20)):
        t = t0 + i / 20
        ns = round(t * NS_)
        q = np.full(7, t)
        if gap_s is None or not gap_s[0] <= t - t0 < gap_s[1]:
            rec.write(NS + "joint_states", convert.joint_state_msg(JOINTS, q, np.zeros(7), t), ns)
        rec.write(NS + "ee_pose", convert.pose_msg([0.5, 0.0, 0.2], [0, 0.7071068, 0.7071068, 0], t, "base"), ns)
        rec.write(NS + "ee_twist", convert.twist_msg(np.zeros(3), np.zeros(3), t, "base"), ns)
        rec.write(NS + "gripper_state", convert.gripper_state_msg(("f1", "f2"), 0.04, t), ns)
        rec.write(
            NS + "task/object_state", task_convert.object_state_msg(np.zeros(10), LAYOUT.task.object_state_layout), ns
        )
        rec.write(NS + "task/success", Bool(data=bool(success_s[0] <= t - t0 < success_s[1])), ns)
        if i % 2 == 0:
            cmd = EECommand(delta_pos_m=np.array([0.01, 0, 0]), delta_rotvec_rad=np.zeros(3), gripper=1.0)
            rec.write(NS + "ee_command", convert.twist_from_command(cmd, 0.1, t, "base"), ns + 1000)
            rec.write(NS + "gripper_command", convert.gripper_command_msg(1.0), ns + 1000)
    for t, event in markers:
        rec.write(NS + "actor/episode", episode_msg(event), round((t0 + t) * NS_))
    rec.close()
    return path


def test_segment_on_success_resamples_at_the_control_rate_from_the_freshest_sample(tmp_path):
    bag = _make_bag(tmp_path / "b.mcap")
    r = import_rosbag2(bag, tmp_path / "s", segment_on="success")
    store = EpisodeStore.open(tmp_path / "s", mode="r")
    # ticks at 10.0, 10.1, ...; success seen first at 10.0 + 1.0: episode 0 is 10 steps, terminated with reward 1
    assert (r.episodes, r.namespace, r.mode) == (1, NS, "resampled at 10 Hz")
    ep = store.get_episode(0)
    assert len(ep[keys.ACTION]) == 10 and ep[keys.TERMINATED][-1] and ep[keys.REWARD][-1] == 1.0
    assert not ep[keys.TERMINATED][:-1].any() and ep[keys.SUCCESS][-1] and not ep[keys.SUCCESS][:-1].any()
    np.testing.assert_allclose(ep[keys.T_CAPTURE], 10.0 + 0.1 * np.arange(10), atol=1e-9)
    np.testing.assert_allclose(ep[keys.STATE][:, 11], 10.0 + 0.1 * np.arange(10), atol=1e-5)  # joint q0 = stamp
    # the command sent in each tick period: vx 0.1 m/s for 0.1 s = 0.01 m = 0.4 of max_step_m; gripper closed
    np.testing.assert_allclose(ep[keys.ACTION], np.tile([0.4, 0, 0, 1.0], (10, 1)), atol=1e-6)
    assert store.meta["source"] == "rosbag2" and store.meta["obs_layout"] == LAYOUT.task_meta()["obs_layout"]


def test_episode_s_cuts_fixed_windows_and_a_stale_input_pauses_them(tmp_path):
    bag = _make_bag(tmp_path / "b.mcap", duration_s=4.0, success_s=(9.0, 9.0), gap_s=(1.5, 2.2))
    r = import_rosbag2(bag, tmp_path / "s", episode_s=1.0)
    store = EpisodeStore.open(tmp_path / "s", mode="r")
    # no joint_states after 11.45 s until 12.25 s: ticks 11.8-12.2 find it older than 0.3 s and pause (no steps);
    # ticks 11.5-11.7 still use the 11.45 s sample (the freshest, not too old)
    assert r.paused_ticks == 5 and store.n_episodes == 3
    assert list(store.episode_lengths) == [10, 10, 10] and store.get_key(keys.TRUNCATED).sum() == 3
    t = store.get_key(keys.T_CAPTURE)
    np.testing.assert_allclose(t[12:18], [11.3, 11.4, 11.45, 11.45, 11.45, 12.3], atol=1e-9)


def test_episode_markers_delimit_episodes(tmp_path):
    bag = _make_bag(tmp_path / "b.mcap", success_s=(9.0, 9.0), markers=[(0.5, "start"), (1.0, "end"), (2.0, "start"), (2.3, "discard"), (2.5, "start"), (3.2, "end")])  # fmt: skip
    import_rosbag2(bag, tmp_path / "s")
    store = EpisodeStore.open(tmp_path / "s", mode="r")
    assert list(store.episode_lengths) == [5, 7]
    np.testing.assert_allclose(store.get_key(keys.T_CAPTURE)[[0, 5]], [10.5, 12.5], atol=1e-9)


@pytest.mark.parametrize(
    "case, flags, message",
    [
        ("no topics", [], "none of the robot's topics"),
        ("no rule", [], "no episode markers"),
        ("pixels", ["--obs-mode", "pixels"], "lacks ['/robot_9/front/image_raw'"),
        ("wrong type", ["--segment-on", "success"], "holds std_msgs/msg/Bool (ros2msg); the actor reads it as"),
    ],
)
def test_a_bag_that_cannot_make_episodes_is_refused_in_one_line(tmp_path, case, flags, message):
    if case == "no topics":
        rec = McapRecorder(tmp_path / "b.mcap", ActorConfig())
        rec.write("/chatter", Bool(data=True), 1)
        rec.close()
    elif case == "wrong type":
        rec = McapRecorder(tmp_path / "b.mcap", ActorConfig())
        rec.write(NS + "joint_states", Bool(data=True), 1)
        rec.close()
    else:
        _make_bag(tmp_path / "b.mcap", duration_s=0.5)
    out = tmp_path / "s"
    cmd = [str(BIN / "robot-rl"), "data", "import", str(tmp_path / "b.mcap"), "--format", "rosbag2", "--out", str(out)]
    run = subprocess.run(cmd + flags, capture_output=True, text=True)
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr and not out.exists()


def test_data_info_reads_a_bag_and_a_lerobot_directory(tmp_path):
    bag = _make_bag(tmp_path / "b.mcap", duration_s=1.0, markers=[(0.1, "start"), (0.5, "end")])
    info = subprocess.run([str(BIN / "robot-rl"), "data", "info", str(bag), "--json"], capture_output=True, text=True)
    s = json.loads(info.stdout)
    assert s["episodes"] == 1 and s["topics"][NS + "joint_states"] == {
        "type": "sensor_msgs/msg/JointState",
        "messages": 20,
    }

    from robot_rl.data.lerobot_export import export_lerobot

    import_rosbag2(bag, tmp_path / "store")
    export_lerobot(tmp_path / "store", tmp_path / "lerobot")
    text = subprocess.run(
        [str(BIN / "robot-rl"), "data", "info", str(tmp_path / "lerobot")], capture_output=True, text=True
    ).stdout
    assert "LeRobotDataset v3.0" in text and "episodes         1" in text and "observation.state  float32 [28]" in text


def test_data_view_reads_a_bag_through_its_import(tmp_path, monkeypatch, capsys):
    import tempfile

    from test_viz import _rrd_series

    from robot_rl.cli import main
    from robot_rl.data.video import read_mp4

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the temporary store goes (and must go away)
    bag = _make_bag(tmp_path / "b.mcap", success_s=(9.0, 9.0), markers=[(0.5, "start"), (1.0, "end"), (2.5, "start"), (3.2, "end")])  # fmt: skip
    mp4, rrd = tmp_path / "ep.mp4", tmp_path / "b.rrd"
    assert main(["data", "view", str(bag), "--episode", "-1", "--out", str(mp4)]) == 0
    assert (
        f"wrote {mp4}: episode 1, 7 frames at 10 fps, cameras none (read by the rosbag2 import)"
        in capsys.readouterr().out
    )
    assert len(read_mp4(mp4)) == 7
    assert main(["data", "view", str(bag), "--rerun", "--save", str(rrd)]) == 0
    assert "episodes all (2), 12 steps" in capsys.readouterr().out
    import_rosbag2(bag, tmp_path / "s")
    reward = EpisodeStore.open(tmp_path / "s").get_key(keys.REWARD)
    assert _rrd_series(rrd, "signals/reward") == {row: float(r) for row, r in enumerate(reward)}
    assert not list(tmp_path.glob("robot-rl-read-*"))
    # a bag the defaults cannot read: the import's refusal and how to import it with options, in one line
    _make_bag(tmp_path / "plain.mcap", duration_s=0.5)
    assert main(["data", "view", str(tmp_path / "plain.mcap"), "--rerun", "--save", str(rrd)]) == 1
    err = capsys.readouterr().err
    assert "no episode markers" in err and "robot-rl data import" in err and err.count("\n") == 1
