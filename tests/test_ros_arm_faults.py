"""The arm node (`adapter:=ros2_control`, a real process) against a ros2_control driver that misbehaves.

The driver is a real rclpy node in the test process (`FakeDriver`), playing what the bridge reads and
writes: the driver's joint_states, its pose broadcaster's PoseStamped, and a Cartesian controller's
PoseStamped target topic, which it follows (or, told so, ignores). It sends NaN, inf, short and foreign
joint states, goes silent and comes back, at each lifecycle stage of the arm node; the arm node must hold,
say why in arm_status, log each transition once, stay alive, and clear the fault by `recover` only once
valid data flows again. `reset` must stream targets within the safety limits to the configured home pose,
and fail clearly on a timeout and on an e-stop. One arm node (started unconfigured) serves the whole file,
in order. Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rosprocs import Probe, start_process, stop_process
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from robot_rl.ros import convert, topics
from robot_rl_drivers.arm_node import ARM_STATUS, ESTOP, ESTOP_QOS, RECOVER, STATUS_QOS
from robot_rl_drivers.arm_pose import rotation_between

pytestmark = pytest.mark.ros

NS = f"/arm_faults_{os.getpid()}"
DRIVER = f"{NS}_driver"
BIN = Path(sys.executable).parent
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
CONTROL_HZ, STALE_S, HOME_TIMEOUT_S = 50.0, 0.4, 3.0
MAX_STEP_M, MAX_SPEED_M_S, MAX_ACCEL_M_S2, MAX_ANGVEL_RAD_S, MAX_LEAD_M = 0.03, 0.2, 2.0, 1.0, 0.05
HOME_M, HOME_QUAT = np.array([0.5, 0.0, 0.25]), np.array([0.0, 1.0, 0.0, 0.0])  # tool down
START_M = np.array([0.42, 0.12, 0.18])
START_QUAT = np.array([0.0, np.cos(0.2), np.sin(0.2), 0.0])  # tool down, turned 0.4 rad about z
FAULT_LINE = "arm fault, holding"


class FakeDriver:
    """A ros2_control driver at 100 Hz on the probe's node. `corrupt(kind, n)` spoils its next n messages (n < 0:
    until told otherwise); `silent` stops it; `follow` makes its tool track the streamed targets at once."""

    def __init__(self, probe: Probe):
        node = probe.node
        self.pub_joints = node.create_publisher(JointState, f"{DRIVER}/joint_states", 10)
        self.pub_pose = node.create_publisher(PoseStamped, f"{DRIVER}/current_pose", 10)
        node.create_subscription(PoseStamped, f"{DRIVER}/target_pose", self._on_target, 100)  # keeps every target
        self.pos, self.quat = START_M.copy(), START_QUAT.copy()
        self.targets: list[np.ndarray] = []  # every target received: stamp s, x y z, qw qx qy qz
        self.follow, self.silent = True, False
        self.kind, self.left = "", 0
        node.create_timer(0.01, self._tick)

    def corrupt(self, kind: str, n: int = 1) -> None:
        self.kind, self.left = kind, n

    def _on_target(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        self.targets.append(np.array([convert.seconds_from_stamp(msg.header.stamp), p.x, p.y, p.z, o.w, o.x, o.y, o.z]))
        if self.follow:
            self.pos, self.quat = self.targets[-1][1:4].copy(), self.targets[-1][4:].copy()

    def _tick(self) -> None:
        if self.silent:
            return
        kind = self.kind if self.left != 0 else ""
        self.left -= 1 if self.left > 0 else 0
        joints = JointState(name=list(JOINTS), position=[0.1 * i for i in range(7)], velocity=[0.0] * 7)
        joints.header.stamp = convert.stamp_from_seconds(time.time())
        if kind == "joint_nan":
            joints.position[2] = float("nan")
        elif kind == "short":
            joints.position = joints.position[:5]
        elif kind == "foreign":  # another publisher's joints on the same topic: not ours, ignored
            joints = JointState(name=["finger_joint1", "finger_joint2"], position=[0.04, 0.04])
        elif kind == "missing":
            joints = JointState(name=JOINTS[:6] + ["elbow"], position=[0.0] * 7)
        pos = self.pos.copy()
        pos[0] = {"pose_nan": float("nan"), "pose_inf": float("inf")}.get(kind, pos[0])
        self.pub_joints.publish(joints)
        pose = convert.pose_msg(np.zeros(3), self.quat, time.time(), "fr3_link0")  # raw fields: may be NaN
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = map(float, pos)
        self.pub_pose.publish(pose)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """(process, log path, probe, driver): the arm node bridged to the FakeDriver, started unconfigured."""
    tmp = tmp_path_factory.mktemp("arm_faults")
    bridge = {
        "preset": "none",
        "joint_states_topic": f"{DRIVER}/joint_states",
        "joint_names": JOINTS,
        "pose_topic": f"{DRIVER}/current_pose",
        "pose_command_topic": f"{DRIVER}/target_pose",
        "command_frame_id": "fr3_link0",
        "stale_after_s": STALE_S,
        "connect_timeout_s": 5.0,
        "workspace_low_m": [0.3, -0.3, 0.02],
        "workspace_high_m": [0.75, 0.3, 0.5],
        "home_pos_m": HOME_M.tolist(),
        "home_quat_wxyz": HOME_QUAT.tolist(),
    }
    params = {
        "adapter": "ros2_control",
        "autostart": "unconfigured",
        "control_rate_hz": CONTROL_HZ,
        "status_rate_hz": 5.0,
        "watchdog_timeout_s": 0.3,
        "max_step_m": MAX_STEP_M,
        "max_speed_m_s": MAX_SPEED_M_S,
        "max_accel_m_s2": MAX_ACCEL_M_S2,
        "max_angvel_rad_s": MAX_ANGVEL_RAD_S,
        "max_target_lead_m": MAX_LEAD_M,
        "home_timeout_s": HOME_TIMEOUT_S,
        "ros2_control": bridge,
    }
    (tmp / "arm.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    log = tmp / "arm.log"
    probe = Probe("arm_faults_probe")
    driver = FakeDriver(probe)
    probe.record(f"{NS}/{ARM_STATUS}", String, STATUS_QOS)
    probe.record(f"{NS}/{topics.EE_POSE}", PoseStamped, topics.STATE_QOS)
    probe.estop = probe.node.create_publisher(Bool, f"{NS}/{ESTOP}", ESTOP_QOS)
    probe.ee_command = probe.node.create_publisher(TwistStamped, f"{NS}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
    proc = start_process(
        [str(BIN / "robot-rl-arm-node"), "--ros-args", "-r", f"__ns:={NS}", "--params-file", str(tmp / "arm.yaml")], log
    )
    up = probe.spin_until(lambda: probe.heard[f"{NS}/{ARM_STATUS}"] or proc.poll() is not None, timeout_s=45.0)
    assert up and proc.poll() is None, f"arm node did not come up:\n{log.read_text()}"
    # tests publish estop and an ee_command once: those would be lost before discovery matched the node's readers
    assert probe.wait_matched(probe.estop, probe.ee_command), "the arm node never subscribed"
    yield proc, log, probe, driver
    try:
        rc = stop_process(proc)
    finally:
        probe.close()
    assert rc == 0, f"arm node exited with {rc} on SIGINT:\n{log.read_text()}"


def _status(probe: Probe) -> dict:
    return json.loads(probe.heard[f"{NS}/{ARM_STATUS}"][-1][1].data)


def _lifecycle(probe: Probe, transition: int | None = None) -> str:
    if transition is not None:
        answer = probe.call(
            ChangeState, f"{NS}/arm/change_state", ChangeState.Request(transition=Transition(id=transition))
        )
        assert answer.success, f"transition {transition} failed"
    return probe.call(GetState, f"{NS}/arm/get_state").current_state.label


def _make_active(probe: Probe) -> None:
    """Configure and activate the node if an earlier test has not (each test can run alone)."""
    if _lifecycle(probe) == "unconfigured":
        _lifecycle(probe, Transition.TRANSITION_CONFIGURE)
    if _lifecycle(probe) == "inactive":
        _lifecycle(probe, Transition.TRANSITION_ACTIVATE)
    assert probe.spin_until(lambda: _status(probe)["lifecycle"] == "active" and not _status(probe)["fault"], 3.0)


def _faults_logged(log: Path) -> int:
    return log.read_text().count(FAULT_LINE)


def _expect_fault_then_recover(cell, words: str) -> None:
    """A fault saying `words` is reported and logged once; recover is refused while the driver still sends bad
    data, and succeeds once it sends valid data again."""
    proc, log, probe, driver = cell
    assert probe.spin_until(lambda: words in _status(probe)["fault"], 3.0), _status(probe)
    before = _faults_logged(log)
    probe.spin_for(1.0)  # ten status heartbeats, fifty control periods: still one log line
    assert _faults_logged(log) == before and proc.poll() is None
    if driver.left != 0:  # still corrupting
        refused = probe.call(Trigger, f"{NS}/{RECOVER}")
        assert not refused.success and words in refused.message, refused.message
        driver.corrupt("", 0)
    assert probe.spin_until(lambda: "no fault any more" in log.read_text().split(FAULT_LINE)[-1], 3.0)
    answer = probe.call(Trigger, f"{NS}/{RECOVER}")
    assert answer.success and "fault" in answer.message, answer.message
    assert probe.spin_until(lambda: _status(probe)["fault"] == "", 2.0)


def test_nan_in_the_joint_state_at_configure_is_a_fault_and_recover_clears_it_once_valid_data_returns(cell):
    proc, log, probe, driver = cell
    driver.corrupt("joint_nan", -1)
    probe.spin_for(0.3)
    assert _lifecycle(probe, Transition.TRANSITION_CONFIGURE) == "inactive"  # connected, holding, faulted
    assert probe.spin_until(lambda: "driver state invalid" in _status(probe)["fault"], 3.0), _status(probe)
    assert "has non-finite values for ['fr3_joint3']" in _status(probe)["fault"]
    probe.heard[f"{NS}/{topics.EE_POSE}"].clear()
    probe.spin_for(0.5)
    assert probe.heard[f"{NS}/{topics.EE_POSE}"] == [], "state published from NaN"
    _expect_fault_then_recover(cell, "non-finite values for ['fr3_joint3']")
    assert _faults_logged(log) == 1, log.read_text()
    assert probe.spin_until(lambda: len(probe.heard[f"{NS}/{topics.EE_POSE}"]) > 5, 2.0) and proc.poll() is None


def test_a_single_nan_pose_while_inactive_is_a_fault_and_a_foreign_joint_state_is_ignored(cell):
    proc, log, probe, driver = cell
    if _lifecycle(probe) == "unconfigured":
        _lifecycle(probe, Transition.TRANSITION_CONFIGURE)
    assert _lifecycle(probe) == "inactive"
    driver.corrupt("foreign", 20)
    probe.spin_for(0.6)
    assert _status(probe)["fault"] == "", "a joint state naming none of our joints is another publisher's"
    before = _faults_logged(log)
    driver.corrupt("pose_nan", 1)
    _expect_fault_then_recover(cell, "current_pose has non-finite values")
    assert _faults_logged(log) == before + 1 and proc.poll() is None


@pytest.mark.parametrize(
    "kind, words",
    [
        ("pose_inf", "current_pose has non-finite values"),
        ("short", "has 7 names but 5 positions"),
        ("missing", "lacks joints ['fr3_joint7']"),
    ],
)
def test_bad_driver_state_while_active_holds_the_arm_and_recover_clears_it(cell, kind, words):
    proc, log, probe, driver = cell
    _make_active(probe)
    msg = convert.twist_msg(np.array([0.05, 0.0, 0.0]), np.zeros(3), 0.0, "")
    for _ in range(10):  # the arm moves
        probe.ee_command.publish(msg)
        probe.spin_for(0.05)
    assert len(driver.targets) > 5
    before = _faults_logged(log)
    driver.corrupt(kind, 3)
    for _ in range(10):  # commands keep coming: the arm holds, the targets stop changing
        probe.ee_command.publish(msg)
        probe.spin_for(0.05)
    assert words in _status(probe)["fault"] and _status(probe)["hold_reason"] == "fault", _status(probe)
    held = len(driver.targets)
    for _ in range(10):
        probe.ee_command.publish(msg)
        probe.spin_for(0.05)
    assert len(driver.targets) == held, "targets streamed while faulted"
    _expect_fault_then_recover(cell, words)
    assert _faults_logged(log) == before + 1 and proc.poll() is None


def test_a_silent_driver_is_a_fault_with_the_elapsed_time_logged_once(cell):
    proc, log, probe, driver = cell
    _make_active(probe)
    before = _faults_logged(log)
    driver.silent = True
    assert probe.spin_until(lambda: "driver silent" in _status(probe)["fault"], 3.0), _status(probe)
    probe.spin_for(1.2)
    elapsed = [float(m) for m in re.findall(r"for (\d+\.\d+) s", _status(probe)["fault"])]
    assert elapsed and elapsed[0] > STALE_S + 0.8, _status(probe)["fault"]  # kept current in arm_status
    assert _faults_logged(log) == before + 1, log.read_text()
    refused = probe.call(Trigger, f"{NS}/{RECOVER}")
    assert not refused.success and "driver silent" in refused.message
    driver.silent = False
    assert probe.spin_until(lambda: "no fault any more" in log.read_text().split(FAULT_LINE)[-1], 3.0)
    assert probe.call(Trigger, f"{NS}/{RECOVER}").success and proc.poll() is None


def _reset_async(probe: Probe):
    client = probe.node.create_client(Trigger, f"{NS}/{topics.RESET}")
    assert client.wait_for_service(timeout_sec=5.0)
    return client.call_async(Trigger.Request())


def test_reset_streams_targets_within_the_safety_limits_to_the_home_pose(cell):
    proc, log, probe, driver = cell
    _make_active(probe)
    driver.targets.clear()
    future = _reset_async(probe)
    probe.spin_for(0.1)
    probe.ee_command.publish(convert.twist_msg(np.array([0.0, 0.1, 0.0]), np.zeros(3), 0.0, ""))  # refused while homing
    assert probe.spin_until(future.done, HOME_TIMEOUT_S + 2.0), log.read_text()[-3000:]
    answer = future.result()
    assert answer.success and "moved home" in answer.message, answer.message
    assert np.linalg.norm(driver.pos - HOME_M) < 0.01 and _status(probe)["reset"].startswith("moved home")
    targets = np.array(driver.targets)
    dt_s = 1.0 / CONTROL_HZ
    periods = np.maximum(1, np.round(np.diff(targets[:, 0]) / dt_s))  # control periods between two targets (stamps)
    assert periods.mean() < 1.2, periods  # nearly every period's target arrived
    steps_m = np.linalg.norm(np.diff(targets[:, 1:4], axis=0), axis=1)
    assert np.all(steps_m <= periods * min(MAX_STEP_M, MAX_SPEED_M_S * dt_s) + 1e-9), steps_m.max()
    assert steps_m.max() > 0.9 * MAX_SPEED_M_S * dt_s  # at the speed limit, not crawling
    accel = np.linalg.norm(np.diff(targets[:, 1:4], n=2, axis=0), axis=1) / dt_s**2
    consecutive = (periods[:-1] == 1) & (periods[1:] == 1)
    assert consecutive.sum() > 20 and accel[consecutive].max() <= MAX_ACCEL_M_S2 * 1.001, accel.max()
    turns = np.array([np.linalg.norm(rotation_between(a[4:], b[4:])) for a, b in itertools.pairwise(targets)])
    assert np.all(turns <= periods * MAX_ANGVEL_RAD_S * dt_s + 1e-6) and turns.max() > 0.5 * MAX_ANGVEL_RAD_S * dt_s
    assert np.linalg.norm(rotation_between(driver.quat, HOME_QUAT)) < 0.05
    assert "ignoring ee_command: moving home (reset)" in log.read_text() and proc.poll() is None


def test_reset_fails_clearly_when_the_arm_does_not_follow_and_an_estop_interrupts_it_at_once(cell):
    proc, log, probe, driver = cell
    _make_active(probe)
    driver.follow = False
    driver.pos = START_M.copy()
    probe.spin_for(0.3)
    driver.targets.clear()
    start = time.monotonic()
    future = _reset_async(probe)
    assert probe.spin_until(future.done, HOME_TIMEOUT_S + 3.0)
    answer, took_s = future.result(), time.monotonic() - start
    assert not answer.success and f"timed out after {HOME_TIMEOUT_S} s" in answer.message, answer.message
    assert HOME_TIMEOUT_S - 0.2 < took_s < HOME_TIMEOUT_S + 1.5
    assert _status(probe)["reset"].startswith("failed: moving home timed out") and "reset failed" in log.read_text()
    leads = np.linalg.norm(np.array(driver.targets)[:, 1:4] - START_M, axis=1)
    assert leads.max() <= MAX_LEAD_M + 1e-6, leads.max()  # the target never ran away from the tool
    future = _reset_async(probe)
    probe.spin_for(0.5)
    assert not future.done()
    probe.estop.publish(Bool(data=True))
    stopped = time.monotonic()
    assert probe.spin_until(future.done, 1.0)
    assert time.monotonic() - stopped < 0.5 and not future.result().success
    assert "emergency stop" in future.result().message
    probe.estop.publish(Bool(data=False))
    driver.follow = True
    probe.spin_for(0.2)
    assert probe.call(Trigger, f"{NS}/{RECOVER}").success and proc.poll() is None
