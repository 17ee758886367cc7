"""The sim robot node as a real process over real DDS: rates, stamps, commands, safety, watchdog, services, and
the hardware arm node's lifecycle and estop, which it is.

One node (small images, short watchdog) serves every test in this file; a probe node in the test
process talks to it. Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rosgraph_msgs.msg import Clock
from rosprocs import Probe as _Probe  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from robot_rl.ros import convert, topics
from robot_rl_drivers.arm_node import ARM_STATUS, ESTOP, ESTOP_QOS, RECOVER, STATUS_QOS

pytestmark = pytest.mark.ros

NS = f"/sim_test_{os.getpid()}"
CONTROL_HZ, CAMERA_HZ, WATCHDOG_S, IMAGE_PX, MAX_SPEED_M_S = 50.0, 10.0, 0.3, 32, 0.15


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """(process, log path, probe) for one sim node in namespace NS."""
    log = tmp_path_factory.mktemp("sim_node") / "sim_node.log"
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    cmd = [
        str(Path(sys.executable).parent / "robot-rl-sim-node"),
        "--ros-args",
        "-r",
        f"__ns:={NS}",
        "-p",
        f"control_rate_hz:={CONTROL_HZ}",
        "-p",
        f"camera_rate_hz:={CAMERA_HZ}",
        "-p",
        f"image_size:={IMAGE_PX}",
        "-p",
        f"watchdog_timeout_s:={WATCHDOG_S}",
        "-p",
        f"max_speed_m_s:={MAX_SPEED_M_S}",
        "-p",
        "seed:=7",
        "-r",
        f"/clock:={NS}/clock",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    probe = _Probe("sim_node_probe")
    for name, msg_type, qos in [
        (topics.JOINT_STATES, JointState, topics.STATE_QOS),
        (topics.EE_POSE, PoseStamped, topics.STATE_QOS),
        (topics.GRIPPER_STATE, JointState, topics.STATE_QOS),
        ("clock", Clock, topics.CLOCK_QOS),
        (topics.image_topic("front"), Image, topics.SENSOR_QOS),
        (topics.image_topic("wrist"), Image, topics.SENSOR_QOS),
        (topics.camera_info_topic("front"), CameraInfo, topics.SENSOR_QOS),
        (ARM_STATUS, String, STATUS_QOS),
    ]:
        probe.record(f"{NS}/{name}", msg_type, qos)
    probe.ee_command = probe.node.create_publisher(TwistStamped, f"{NS}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
    probe.gripper_command = probe.node.create_publisher(Float64, f"{NS}/{topics.GRIPPER_COMMAND}", topics.COMMAND_QOS)
    probe.estop = probe.node.create_publisher(Bool, f"{NS}/{ESTOP}", ESTOP_QOS)
    up = probe.spin_until(lambda: probe.heard[f"{NS}/{topics.EE_POSE}"] or proc.poll() is not None, timeout_s=45.0)
    assert up and proc.poll() is None, f"sim node did not come up:\n{log.read_text()}"
    # tests publish estop and gripper_command once: those would be lost before discovery matched the node's readers
    assert probe.wait_matched(probe.ee_command, probe.gripper_command, probe.estop), "the sim node never subscribed"
    yield proc, log, probe
    proc.send_signal(2)
    try:
        rc = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.close()
    assert rc == 0, f"sim node exited with {rc} on SIGINT:\n{log.read_text()}"


def _pose(probe: _Probe) -> np.ndarray:
    p = probe.heard[f"{NS}/{topics.EE_POSE}"][-1][1].pose.position
    return np.array([p.x, p.y, p.z])


def _drive(probe: _Probe, vel_m_s: tuple[float, float, float], seconds: float, frame_id: str = "") -> None:
    """Publish a constant twist (raw: may hold NaN, which convert.twist_msg refuses to build) at 20 Hz for `seconds`."""
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = vel_m_s
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.ee_command.publish(msg)
        probe.spin_for(0.05)


def test_state_and_cameras_arrive_at_their_rates_with_monotonic_capture_stamps(sim):
    _, _, probe = sim
    probe.spin_for(0.5)  # drain what queued while nobody spun
    for topic in list(probe.heard):
        probe.heard[topic].clear()
    probe.spin_for(2.0)
    joints = [m for _, m in probe.heard[f"{NS}/{topics.JOINT_STATES}"]]
    images = [m for _, m in probe.heard[f"{NS}/{topics.image_topic('front')}"]]
    infos = [m for _, m in probe.heard[f"{NS}/{topics.camera_info_topic('front')}"]]
    clocks = [m for _, m in probe.heard[f"{NS}/clock"]]
    # real time on a loaded 2-core machine: allow slack below, none above
    assert 0.6 * 2 * CONTROL_HZ <= len(joints) <= 1.1 * 2 * CONTROL_HZ
    assert 0.6 * 2 * CAMERA_HZ <= len(images) <= 1.1 * 2 * CAMERA_HZ + 1
    assert len(probe.heard[f"{NS}/{topics.image_topic('wrist')}"]) >= 0.6 * 2 * CAMERA_HZ
    joint_t = [convert.seconds_from_stamp(m.header.stamp) for m in joints]
    image_t = [convert.seconds_from_stamp(m.header.stamp) for m in images]
    assert np.all(np.diff(joint_t) > 0) and np.all(np.diff(image_t) > 0)
    # stamps are sim time on the control grid (a slow probe may miss a few under load: whole periods apart),
    # images on the camera period, each at a state tick
    periods = np.diff(joint_t) * CONTROL_HZ
    assert np.allclose(periods, np.round(periods), atol=1e-4) and np.median(periods) == pytest.approx(1.0)
    image_periods = np.diff(image_t) * CAMERA_HZ
    assert np.allclose(image_periods, np.round(image_periods), atol=1e-4) and np.median(image_periods) == pytest.approx(
        1.0
    )
    assert np.allclose(np.asarray(image_t) * CONTROL_HZ, np.round(np.asarray(image_t) * CONTROL_HZ), atol=1e-4)
    # the last /clock heard may precede the last joint state by up to one control period (separate topics)
    assert convert.seconds_from_stamp(clocks[-1].clock) >= joint_t[-1] - 1.0 / CONTROL_HZ - 1e-9
    assert len(joints[-1].name) == 7 and joints[-1].name[0] == "joint1"
    frame = convert.frame_from_image(images[-1])
    assert frame.image.shape == (IMAGE_PX, IMAGE_PX, 3) and frame.image.std() > 5  # a rendered scene, not a blank
    k = np.array(infos[-1].k).reshape(3, 3)
    assert (infos[-1].width, infos[-1].height) == (IMAGE_PX, IMAGE_PX)
    assert k[0, 2] == IMAGE_PX / 2 and k[1, 2] == IMAGE_PX / 2 and k[0, 0] > 0 and k[0, 0] == k[1, 1]
    assert infos[-1].header.frame_id == "front_optical_frame" and images[-1].encoding == "rgb8"


def test_twist_command_moves_the_tool_its_way_and_the_watchdog_holds_it_when_commands_stop(sim):
    _, _, probe = sim
    start = _pose(probe)
    _drive(probe, (0.0, 0.1, 0.0), seconds=1.0)  # 0.1 m/s along +y for 1 s
    moved = _pose(probe) - start
    assert 0.04 < moved[1] < 0.12, f"expected about +0.1 m along y, moved {moved}"
    assert abs(moved[0]) < 0.015 and abs(moved[2]) < 0.015, f"moved off-axis: {moved}"
    probe.spin_for(WATCHDOG_S + 0.5)  # commands stopped: watchdog expires, arm holds and settles
    held = _pose(probe)
    probe.spin_for(0.8)
    drift = float(np.linalg.norm(_pose(probe) - held))
    assert drift < 0.002, f"arm drifted {drift * 1000:.1f} mm after commands stopped"
    assert abs(held[1] - start[1]) < 0.15  # it stopped soon after the last command, not at the workspace edge


def test_non_finite_and_wrong_frame_commands_are_dropped_and_logged(sim):
    proc, log, probe = sim
    start = _pose(probe)
    _drive(probe, (float("nan"), 0.1, 0.0), seconds=0.6)
    _drive(probe, (0.0, 0.0, float("inf")), seconds=0.3)
    _drive(probe, (0.0, 0.1, 0.0), seconds=0.5, frame_id="camera")  # valid numbers, wrong frame
    probe.spin_for(0.3)
    assert float(np.linalg.norm(_pose(probe) - start)) < 0.002
    assert proc.poll() is None
    text = log.read_text()
    assert "dropped ee_command" in text and "non-finite" in text and "'camera'" in text
    _drive(probe, (0.0, 0.0, 0.08), seconds=0.6)  # the node still obeys valid commands afterwards
    assert _pose(probe)[2] - start[2] > 0.02


def test_gripper_command_closes_the_fingers(sim):
    _, _, probe = sim
    width = lambda: sum(probe.heard[f"{NS}/{topics.GRIPPER_STATE}"][-1][1].position)  # noqa: E731
    assert width() > 0.07  # open after the reset
    probe.gripper_command.publish(convert.gripper_command_msg(1.0))
    assert probe.spin_until(lambda: width() < 0.005, timeout_s=3.0), f"fingers still {width():.4f} m apart"
    probe.gripper_command.publish(Float64(data=float("nan")))  # dropped: stays closed
    probe.spin_for(0.3)
    assert width() < 0.005


def test_reset_service_draws_a_new_start_and_time_keeps_running(sim):
    _, _, probe = sim
    starts, stamps = [], []
    for _ in range(2):
        answer = probe.call(Trigger, f"{NS}/{topics.RESET}")
        assert answer.success and "reset pick_cube" in answer.message
        probe.spin_for(0.3)
        starts.append(_pose(probe))
        stamps.append(convert.seconds_from_stamp(probe.heard[f"{NS}/{topics.JOINT_STATES}"][-1][1].header.stamp))
    assert float(np.linalg.norm(starts[0] - starts[1])) > 0.005  # randomised start poses differ
    assert stamps[1] > stamps[0]
    joint_t = [convert.seconds_from_stamp(m.header.stamp) for _, m in probe.heard[f"{NS}/{topics.JOINT_STATES}"]]
    assert np.all(np.diff(joint_t) > 0), "sim time went backwards across a reset"
    assert sum(probe.heard[f"{NS}/{topics.GRIPPER_STATE}"][-1][1].position) > 0.07  # reset opens the gripper
    success = probe.call(Trigger, f"{NS}/{topics.SUCCESS}")
    assert success.success is False and success.message.startswith("dense_reward=")


def test_a_twist_beyond_the_speed_limit_is_slowed_to_it_by_the_safety_filter(sim):
    _, _, probe = sim
    probe.spin_for(WATCHDOG_S + 0.2)  # let any earlier command lapse
    start = _pose(probe)
    t0 = time.monotonic()
    _drive(probe, (0.0, -3.0, 0.0), seconds=0.4)  # twenty times the limit
    elapsed_s = time.monotonic() - t0
    probe.spin_for(WATCHDOG_S + 0.3)  # the watchdog stops the last command; the arm settles on its target
    moved = start[1] - _pose(probe)[1]
    # at most the speed limit for the time commands flowed plus the watchdog's grace; far below 3 m/s * 0.4 s
    assert 0.03 < moved < MAX_SPEED_M_S * (elapsed_s + WATCHDOG_S) + 0.01, f"moved {moved:.3f} m in {elapsed_s:.2f} s"


def test_a_streamed_pose_target_is_reached_at_the_speed_limit_and_one_outside_the_workspace_stops_at_its_edge(sim):
    _, _, probe = sim
    probe.spin_for(WATCHDOG_S + 0.2)
    target_pub = probe.node.create_publisher(PoseStamped, f"{NS}/{topics.EE_TARGET}", topics.COMMAND_QOS)
    orientation = probe.heard[f"{NS}/{topics.EE_POSE}"][-1][1].pose.orientation
    quat = np.array([orientation.w, orientation.x, orientation.y, orientation.z])

    def stream(goal: np.ndarray, seconds: float) -> None:
        msg = convert.pose_msg(goal, quat, 0.0, "")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            target_pub.publish(msg)
            probe.spin_for(0.05)

    start = _pose(probe)
    goal = start + np.array([0.0, 0.06, -0.03])
    stream(goal, 1.5)  # 6.7 cm at <= 0.15 m/s: ~0.45 s of motion
    assert np.linalg.norm(_pose(probe) - goal) < 0.012, f"at {_pose(probe)}, target {goal}"
    stream(np.array([_pose(probe)[0], _pose(probe)[1], -0.5]), 2.0)  # half a metre below the table
    z_floor = 0.012  # pick_cube's workspace floor (tool point), see robot_rl.cell.TASKS
    assert z_floor - 0.01 < _pose(probe)[2] < z_floor + 0.03, f"tool at z={_pose(probe)[2]:.3f} m"
    stream(goal, 1.5)  # back up, so later tests start from a free pose
    probe.node.destroy_publisher(target_pub)


def _arm_status(probe: _Probe) -> dict:
    return json.loads(probe.heard[f"{NS}/{ARM_STATUS}"][-1][1].data)


def test_the_sim_robots_estop_latches_a_hold_refuses_reset_and_deactivate_ignores_commands_while_physics_runs(sim):
    _, _, probe = sim
    probe.estop.publish(Bool(data=True))
    assert probe.spin_until(lambda: _arm_status(probe)["estop"], 3.0), _arm_status(probe)
    start = _pose(probe)
    _drive(probe, (0.0, 0.1, 0.0), seconds=0.6)
    assert float(np.linalg.norm(_pose(probe) - start)) < 0.002, "the arm moved during an estop"
    refused = probe.call(Trigger, f"{NS}/{topics.RESET}")
    assert not refused.success and "estop" in refused.message
    probe.estop.publish(Bool(data=False))
    answer = probe.call(Trigger, f"{NS}/{RECOVER}")
    assert answer.success and "estop" in answer.message
    _drive(probe, (0.0, 0.1, 0.0), seconds=0.6)
    assert _pose(probe)[1] - start[1] > 0.02, "the arm did not obey after recover"

    def change(t):
        request = ChangeState.Request(transition=Transition(id=t))
        return probe.call(ChangeState, f"{NS}/sim_robot/change_state", request).success

    assert change(Transition.TRANSITION_DEACTIVATE)
    held, t0 = _pose(probe), convert.seconds_from_stamp(probe.heard[f"{NS}/{topics.JOINT_STATES}"][-1][1].header.stamp)
    _drive(probe, (0.0, -0.1, 0.0), seconds=0.6)
    assert float(np.linalg.norm(_pose(probe) - held)) < 0.003 and _arm_status(probe)["hold_reason"] == "inactive"
    assert convert.seconds_from_stamp(probe.heard[f"{NS}/{topics.JOINT_STATES}"][-1][1].header.stamp) > t0 + 0.3
    assert change(Transition.TRANSITION_ACTIVATE)
    _drive(probe, (0.0, -0.1, 0.0), seconds=0.6)
    assert held[1] - _pose(probe)[1] > 0.02, "the arm did not obey after activate"
