"""The arm driver node (sim adapter) as a real process over real DDS: the sim robot's topics, lifecycle,
safety filter, watchdog, estop and recover.

One arm node (started unconfigured) serves the tests in this file; a probe node in the test process
talks to it. Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rosprocs import Probe as _Probe  # noqa: E402
from rosprocs import start_process, stop_process
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from robot_rl.ros import convert, topics
from robot_rl_drivers.arm_node import ARM_STATUS, ESTOP, ESTOP_QOS, RECOVER, STATUS_QOS

pytestmark = pytest.mark.ros

NS = f"/arm_test_{os.getpid()}"
BIN = Path(sys.executable).parent
CONTROL_HZ, WATCHDOG_S = 50.0, 0.3
HOME_M = np.array([0.5, 0.0, 0.25])  # SimArmConfig.home_pos_m


@pytest.fixture(scope="module")
def arm(tmp_path_factory):
    """(process, log path, probe) for one arm node with the sim adapter in namespace NS, started unconfigured."""
    log = tmp_path_factory.mktemp("arm_node") / "arm_node.log"
    proc = start_process(
        [
            str(BIN / "robot-rl-arm-node"),
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-p",
            "adapter:=sim",
            "-p",
            "autostart:=unconfigured",
            "-p",
            f"control_rate_hz:={CONTROL_HZ}",
            "-p",
            f"watchdog_timeout_s:={WATCHDOG_S}",
            "-p",
            "max_speed_m_s:=0.15",
        ],
        log,
    )
    probe = _Probe("arm_node_probe")
    for name, msg_type, qos in [
        (topics.JOINT_STATES, JointState, topics.STATE_QOS),
        (topics.EE_POSE, PoseStamped, topics.STATE_QOS),
        (topics.GRIPPER_STATE, JointState, topics.STATE_QOS),
        (ARM_STATUS, String, STATUS_QOS),
    ]:
        probe.record(f"{NS}/{name}", msg_type, qos)
    probe.ee_command = probe.node.create_publisher(TwistStamped, f"{NS}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
    probe.gripper_command = probe.node.create_publisher(Float64, f"{NS}/{topics.GRIPPER_COMMAND}", topics.COMMAND_QOS)
    probe.estop = probe.node.create_publisher(Bool, f"{NS}/{ESTOP}", ESTOP_QOS)
    up = probe.spin_until(lambda: probe.heard[f"{NS}/{ARM_STATUS}"] or proc.poll() is not None, timeout_s=45.0)
    assert up and proc.poll() is None, f"arm node did not come up:\n{log.read_text()}"
    # tests publish estop and gripper_command once: those would be lost before discovery matched the node's readers
    assert probe.wait_matched(probe.ee_command, probe.gripper_command, probe.estop), "the arm node never subscribed"
    yield proc, log, probe
    try:
        rc = stop_process(proc)
    finally:
        probe.close()
    assert rc == 0, f"arm node exited with {rc} on SIGINT:\n{log.read_text()}"


def _status(probe: _Probe) -> dict:
    return json.loads(probe.heard[f"{NS}/{ARM_STATUS}"][-1][1].data)


def _pose(probe: _Probe) -> np.ndarray:
    p = probe.heard[f"{NS}/{topics.EE_POSE}"][-1][1].pose.position
    return np.array([p.x, p.y, p.z])


def _lifecycle(probe: _Probe, transition: int | None = None) -> str:
    """Trigger `transition` through the node's change_state service (if given); the state label after it."""
    if transition is not None:
        answer = probe.call(
            ChangeState, f"{NS}/arm/change_state", ChangeState.Request(transition=Transition(id=transition))
        )
        assert answer.success, f"transition {transition} failed"
    return probe.call(GetState, f"{NS}/arm/get_state").current_state.label


def _make_active(probe: _Probe) -> None:
    if _lifecycle(probe) == "unconfigured":
        _lifecycle(probe, Transition.TRANSITION_CONFIGURE)
    if _lifecycle(probe) == "inactive":
        _lifecycle(probe, Transition.TRANSITION_ACTIVATE)
    assert probe.spin_until(lambda: probe.heard[f"{NS}/{topics.EE_POSE}"], 5.0)


def _drive(probe: _Probe, vel_m_s: tuple[float, float, float], seconds: float, frame_id: str = "") -> None:
    """Publish a constant twist (raw: may hold NaN) at 20 Hz for `seconds`."""
    msg = TwistStamped()
    msg.header.frame_id = frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = vel_m_s
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.ee_command.publish(msg)
        probe.spin_for(0.05)


def test_lifecycle_configure_publishes_state_activate_obeys_deactivate_holds_cleanup_disconnects(arm):
    _, _, probe = arm
    assert _lifecycle(probe) == "unconfigured"
    probe.spin_for(0.5)
    assert probe.heard[f"{NS}/{topics.JOINT_STATES}"] == []  # not connected: nothing to publish
    assert _lifecycle(probe, Transition.TRANSITION_CONFIGURE) == "inactive"
    assert probe.spin_until(lambda: len(probe.heard[f"{NS}/{topics.EE_POSE}"]) > 5, 5.0)
    start = _pose(probe)
    assert np.linalg.norm(start - HOME_M) < 0.005, f"connected arm at {start}, home is {HOME_M}"
    _drive(probe, (0.1, 0.0, 0.0), 0.6)  # inactive: ignored
    assert np.linalg.norm(_pose(probe) - start) < 0.002 and _status(probe)["hold_reason"] == "inactive"
    assert _lifecycle(probe, Transition.TRANSITION_ACTIVATE) == "active"
    _drive(probe, (0.1, 0.0, 0.0), 0.6)
    assert _pose(probe)[0] - start[0] > 0.02, f"active arm did not follow +x: {start} -> {_pose(probe)}"
    assert _lifecycle(probe, Transition.TRANSITION_DEACTIVATE) == "inactive"
    held = _pose(probe)
    _drive(probe, (-0.1, 0.0, 0.0), 0.6)
    assert np.linalg.norm(_pose(probe) - held) < 0.003
    assert _lifecycle(probe, Transition.TRANSITION_CLEANUP) == "unconfigured"
    probe.spin_for(0.3)
    n = len(probe.heard[f"{NS}/{topics.JOINT_STATES}"])
    probe.spin_for(0.5)
    assert len(probe.heard[f"{NS}/{topics.JOINT_STATES}"]) == n and _status(probe)["connected"] is False
    _make_active(probe)
    assert probe.spin_until(lambda: _status(probe)["lifecycle"] == "active", 2.0), _status(probe)


def test_state_topics_carry_seven_joints_the_gripper_and_stamps_at_the_control_rate(arm):
    _, _, probe = arm
    _make_active(probe)
    probe.spin_for(0.3)
    topic = f"{NS}/{topics.JOINT_STATES}"
    probe.heard[topic].clear()
    probe.spin_for(1.0)
    joints = [m for _, m in probe.heard[topic]]
    assert 0.6 * CONTROL_HZ <= len(joints) <= 1.1 * CONTROL_HZ
    stamps = [convert.seconds_from_stamp(m.header.stamp) for m in joints]
    assert np.all(np.diff(stamps) > 0) and abs(stamps[-1] - time.time()) < 1.0  # node clock (wall time), at capture
    assert list(joints[-1].name) == [f"joint{i}" for i in range(1, 8)]
    gripper = probe.heard[f"{NS}/{topics.GRIPPER_STATE}"][-1][1]
    assert list(gripper.name) == ["finger_joint1", "finger_joint2"] and sum(gripper.position) > 0.07


def test_a_nan_command_never_reaches_the_arm_and_valid_ones_still_do(arm):
    _, log, probe = arm
    _make_active(probe)
    probe.spin_for(WATCHDOG_S + 0.3)
    start, before = _pose(probe), _status(probe)
    _drive(probe, (float("nan"), 0.1, 0.0), 0.6)
    probe.spin_for(1.1)  # the next status heartbeat
    after = _status(probe)
    assert after["commands_applied"] == before["commands_applied"], "a command reached the arm while only NaN was sent"
    assert after["commands_dropped"] >= before["commands_dropped"] + 5
    assert np.linalg.norm(_pose(probe) - start) < 0.002
    assert "dropped ee_command" in log.read_text() and "non-finite" in log.read_text()
    _drive(probe, (0.0, 0.0, 0.08), 0.6)
    assert _pose(probe)[2] - start[2] > 0.02


def test_the_watchdog_holds_the_arm_when_commands_stop(arm):
    _, log, probe = arm
    _make_active(probe)
    start = _pose(probe)
    _drive(probe, (0.0, 0.1, 0.0), 1.0)
    assert 0.04 < _pose(probe)[1] - start[1] < 0.13
    probe.spin_for(WATCHDOG_S + 0.4)
    held = _pose(probe)
    probe.spin_for(0.8)
    assert np.linalg.norm(_pose(probe) - held) < 0.002, "the arm kept moving after commands stopped"
    assert _status(probe)["hold_reason"] == "watchdog" and "holding the arm" in log.read_text()


def test_estop_latches_a_hold_until_recover_succeeds_and_recover_refuses_while_it_is_pressed(arm):
    _, _, probe = arm
    _make_active(probe)
    probe.estop.publish(Bool(data=True))
    assert probe.spin_until(lambda: _status(probe)["estop"], 3.0)
    start = _pose(probe)
    _drive(probe, (0.0, -0.1, 0.0), 0.6)
    assert np.linalg.norm(_pose(probe) - start) < 0.002, "the arm moved during an estop"
    refused = probe.call(Trigger, f"{NS}/{RECOVER}")
    assert not refused.success and "still true" in refused.message
    probe.estop.publish(Bool(data=False))  # releasing the button alone does not release the arm
    probe.spin_for(0.3)
    _drive(probe, (0.0, -0.1, 0.0), 0.6)
    assert np.linalg.norm(_pose(probe) - start) < 0.002 and _status(probe)["estop"] is True
    answer = probe.call(Trigger, f"{NS}/{RECOVER}")
    assert answer.success and "estop" in answer.message
    _drive(probe, (0.0, -0.1, 0.0), 0.6)
    assert start[1] - _pose(probe)[1] > 0.02, "the arm did not obey after recover"


def test_reset_moves_the_arm_home_and_opens_the_gripper(arm):
    _, _, probe = arm
    _make_active(probe)
    probe.gripper_command.publish(convert.gripper_command_msg(1.0))
    width = lambda: sum(probe.heard[f"{NS}/{topics.GRIPPER_STATE}"][-1][1].position)  # noqa: E731
    assert probe.spin_until(lambda: width() < 0.005, 3.0), f"fingers still {width():.4f} m apart"
    _drive(probe, (0.0, 0.05, -0.05), 0.6)
    assert np.linalg.norm(_pose(probe) - HOME_M) > 0.02
    answer = probe.call(Trigger, f"{NS}/{topics.RESET}")
    assert answer.success and "moved home" in answer.message
    probe.spin_for(0.3)
    assert np.linalg.norm(_pose(probe) - HOME_M) < 0.01 and width() > 0.07


def test_a_streamed_pose_target_is_reached_and_one_below_the_table_stops_at_the_workspace_floor(arm):
    _, _, probe = arm
    _make_active(probe)
    target_pub = probe.node.create_publisher(PoseStamped, f"{NS}/{topics.EE_TARGET}", topics.COMMAND_QOS)
    o = probe.heard[f"{NS}/{topics.EE_POSE}"][-1][1].pose.orientation
    quat = np.array([o.w, o.x, o.y, o.z])

    def stream(goal: np.ndarray, seconds: float) -> None:
        msg = convert.pose_msg(goal, quat, 0.0, "")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            target_pub.publish(msg)
            probe.spin_for(0.05)

    goal = _pose(probe) + np.array([0.03, -0.04, -0.03])
    stream(goal, 1.5)  # 5.8 cm at <= 0.15 m/s
    assert np.linalg.norm(_pose(probe) - goal) < 0.01, f"at {_pose(probe)}, target {goal}"
    stream(np.array([goal[0], goal[1], -0.5]), 2.5)  # half a metre below the table
    assert 0.012 - 0.01 < _pose(probe)[2] < 0.012 + 0.02, f"tool at z={_pose(probe)[2]:.3f} m; the floor is 0.012 m"
    stream(goal, 2.0)  # back up, so later tests start from a free pose
    probe.node.destroy_publisher(target_pub)


def _by_node(probe: _Probe, getter, name: str, ns: str) -> dict[str, list[str]]:
    """{topic relative to ns: types} of one node, ROS-internal topics left out."""
    internal = ("/rosout", "/parameter_events")
    try:
        found = getter(name, ns)
    except Exception:  # rclpy's NodeNameNonExistentError: the node is not discovered yet
        return {}
    return {t[len(ns) + 1 :]: sorted(types) for t, types in found if t not in internal and t.startswith(ns + "/")}


def test_the_sim_robot_is_the_arm_node_with_the_same_topics_services_and_qos_plus_the_sim_extras(arm, tmp_path):
    _, _, probe = arm
    _make_active(probe)
    sim_ns = f"{NS}_sim"
    sim = start_process(
        [
            str(BIN / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={sim_ns}",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "publish_clock:=false",
        ],
        tmp_path / "sim.log",
    )
    try:
        node = probe.node
        assert probe.spin_until(
            lambda: (
                topics.TASK_SUCCESS in _by_node(probe, node.get_publisher_names_and_types_by_node, "sim_robot", sim_ns)
            ),
            45.0,
        ), (tmp_path / "sim.log").read_text()
        probe.spin_for(0.5)
        sim_pub = _by_node(probe, node.get_publisher_names_and_types_by_node, "sim_robot", sim_ns)
        arm_pub = _by_node(probe, node.get_publisher_names_and_types_by_node, "arm", NS)
        sim_sub = _by_node(probe, node.get_subscriber_names_and_types_by_node, "sim_robot", sim_ns)
        arm_sub = _by_node(probe, node.get_subscriber_names_and_types_by_node, "arm", NS)
        sim_srv = _by_node(probe, node.get_service_names_and_types_by_node, "sim_robot", sim_ns)
        arm_srv = _by_node(probe, node.get_service_names_and_types_by_node, "arm", NS)
        # the sim robot is the arm node plus the sim-only extras: ground truth (a reward classifier's on hardware)
        # and its own sim_status; the lifecycle event topic is named after each node
        extras = {topics.TASK_SUCCESS, topics.TASK_OBJECT_STATE, "sim_status"}
        assert set(sim_pub) - set(arm_pub) == extras | {"sim_robot/transition_event"}
        assert {k: v for k, v in sim_pub.items() if k not in extras and k != "sim_robot/transition_event"} == {
            k: v for k, v in arm_pub.items() if k != "arm/transition_event"
        }
        assert sim_sub == arm_sub and set(sim_sub) == {
            topics.EE_COMMAND,
            topics.EE_TARGET,
            topics.GRIPPER_COMMAND,
            ESTOP,
        }
        for service in (topics.RESET, RECOVER):
            assert sim_srv[service] == arm_srv[service] == ["std_srvs/srv/Trigger"]
        assert sim_srv[topics.SUCCESS] == ["std_srvs/srv/Trigger"] and topics.SUCCESS not in arm_srv
        for name in (topics.JOINT_STATES, topics.EE_POSE, topics.EE_TWIST, topics.GRIPPER_STATE):
            (sim_info,), (arm_info,) = (
                node.get_publishers_info_by_topic(f"{sim_ns}/{name}"),
                node.get_publishers_info_by_topic(f"{NS}/{name}"),
            )
            for field in ("reliability", "durability", "history", "depth"):
                assert getattr(sim_info.qos_profile, field) == getattr(arm_info.qos_profile, field), (name, field)
        for name in (topics.EE_COMMAND, topics.GRIPPER_COMMAND):
            (sim_info,), (arm_info,) = (
                node.get_subscriptions_info_by_topic(f"{sim_ns}/{name}"),
                node.get_subscriptions_info_by_topic(f"{NS}/{name}"),
            )
            assert sim_info.qos_profile.reliability == arm_info.qos_profile.reliability, name
    finally:
        stop_process(sim)


# --- the ros2_control bridge next to a running driver ----------------------------------------------
# The "driver" is the sim robot node, a real process: it publishes joint_states / ee_pose / ee_twist /
# gripper_state like a ros2_control robot with state broadcasters, and it is itself a Cartesian pose
# controller: it tracks streamed PoseStamped targets on ee_target (speed-limited by its own safety filter)
# and takes std_msgs/Float64 gripper commands. Nothing is faked: the bridge is configured with those topics.
