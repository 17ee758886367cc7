"""The ros2_control presets against the released controllers' contracts, over real DDS.

A fake cell in this process plays what each preset names — franka_ros2's state topics with CRISP's
`cartesian_impedance_controller`, the UR driver's with FZI's `cartesian_motion_controller` — using the topic
names, message types, frames and QoS read from their sources (see the preset files), hard-coded here so that a
preset that drifts from them fails. The bridge connects to it as it would to the real driver. The gripper goes
through a real action server: franka_msgs and control_msgs are not on PyPI, so the server speaks
test_msgs/action/NestedMessage, registered as a gripper interface with the same open/close calls as franka's.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosprocs import Probe
from sensor_msgs.msg import JointState

from robot_rl.ros import convert
from robot_rl_drivers import gripper_action
from robot_rl_drivers.adapter_ros2_control import Ros2ControlBridge, config_with_preset
from robot_rl_drivers.adapters import AdapterError
from robot_rl_drivers.gripper_action import ActionCall, GripperGoal

try:
    import test_msgs.action as test_msgs_action
except ImportError:  # the test extra's ros-jazzy-test-msgs
    test_msgs_action = None
needs_test_msgs = pytest.mark.skipif(test_msgs_action is None, reason="pip install ros-jazzy-test-msgs (test extra)")

# What the released packages use (their sources, read for this test): topic, controller QoS depth, frame
CELLS = {
    "franka": {
        "joints_topic": "/franka/joint_states",
        "joints": [f"fr3_joint{i}" for i in range(1, 8)],
        "pose_topic": "/franka_robot_state_broadcaster/current_pose",
        "pose_frame": "fr3_link0",
        "target_topic": "/cartesian_impedance_controller/target_pose",
        "target_depth": 1,  # CRISP: rclcpp::QoS(1)
        "target_frame": "fr3_link0",
    },
    "ur": {
        "joints_topic": "/joint_states",
        "joints": [
            "shoulder_pan_joint",
            "shoulder_lift_joint",
            "elbow_joint",
            "wrist_1_joint",
            "wrist_2_joint",
            "wrist_3_joint",
        ],
        "pose_topic": "/tcp_pose_broadcaster/pose",
        "pose_frame": "base",
        "target_topic": "/cartesian_motion_controller/target_frame",
        "target_depth": 3,  # FZI: depth 3
        "target_frame": "base",
    },  # FZI drops targets whose frame_id is not its robot_base_link
}
TOOL_M, TOOL_QUAT = np.array([0.45, 0.05, 0.2]), np.array([0.0, 1.0, 0.0, 0.0])
FINGERS = ["fr3_finger_joint1", "fr3_finger_joint2"]
KNUCKLE = "robotiq_85_left_knuckle_joint"


class FakeCell:
    """A driver's state broadcasters at 100 Hz and a Cartesian controller that keeps the targets it accepts."""

    def __init__(self, probe: Probe, cell: dict):
        node, self.cell = probe.node, cell
        self.pub_joints = node.create_publisher(JointState, cell["joints_topic"], 10)
        self.pub_pose = node.create_publisher(PoseStamped, cell["pose_topic"], 10)
        qos = QoSProfile(
            depth=cell["target_depth"],
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
            history=HistoryPolicy.KEEP_LAST,
        )
        node.create_subscription(PoseStamped, cell["target_topic"], self._on_target, qos)
        self.accepted: list[PoseStamped] = []
        self.dropped: list[str] = []
        self.fingers_m = 0.04  # each finger's offset (franka_gripper's joint state)
        self.knuckle_rad: float | None = None  # a Robotiq knuckle on the shared /joint_states, when set
        self.pub_fingers = node.create_publisher(JointState, "/franka_gripper/joint_states", 1)
        node.create_timer(0.01, self._tick)

    def _on_target(self, msg: PoseStamped) -> None:
        (self.accepted if msg.header.frame_id == self.cell["target_frame"] else self.dropped).append(msg)

    def _tick(self) -> None:
        n = len(self.cell["joints"])
        self.pub_joints.publish(JointState(name=self.cell["joints"], position=[0.1] * n, velocity=[0.0] * n))
        self.pub_pose.publish(convert.pose_msg(TOOL_M, TOOL_QUAT, time.time(), self.cell["pose_frame"]))
        self.pub_fingers.publish(JointState(name=FINGERS, position=[self.fingers_m] * 2))
        if self.knuckle_rad is not None:  # the gripper's broadcaster: its own message on the arm's topic
            self.pub_joints.publish(JointState(name=[KNUCKLE], position=[self.knuckle_rad]))


class FakeHand:
    """franka_gripper's move and grasp actions (as NestedMessage): a grasp closes on a 2 cm object when
    `object_m` is set, else fails at 0 (franka_gripper: success false), a move opens to the goal's width."""

    def __init__(self, probe: Probe, cell: FakeCell, namespace: str = "/franka_gripper"):
        self.cell, self.goals = cell, []
        self.object_m: float | None = 0.02
        action = test_msgs_action.NestedMessage
        self.servers = [
            ActionServer(probe.node, action, f"{namespace}/{name}", lambda h, n=name: self._execute(n, h))
            for name in ("move", "grasp")
        ]

    def _execute(self, name: str, handle):
        goal = handle.request.nested_field
        self.goals.append((name, goal.float64_value, goal.float32_value))
        result = test_msgs_action.NestedMessage.Result()
        if name == "grasp":
            result.nested_field.bool_value = self.object_m is not None
            self.cell.fingers_m = (self.object_m or 0.0) / 2
        else:
            result.nested_field.bool_value = True
            self.cell.fingers_m = goal.float64_value / 2
        handle.succeed()
        return result


def _fill(goal, g: GripperGoal) -> None:
    goal.nested_field.float64_value, goal.nested_field.float32_value = g.width_m, g.force_n


def _outcome(result) -> tuple[bool, str]:
    return result.nested_field.bool_value, "" if result.nested_field.bool_value else "grasped nothing"


FAKE_HAND = (
    ActionCall("test_msgs/action/NestedMessage", "move", _fill, _outcome),
    ActionCall("test_msgs/action/NestedMessage", "grasp", _fill, _outcome),
)


@pytest.fixture
def probe():
    probe = Probe("fake_cell")
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: [probe.executor.spin_once(timeout_sec=0.02) for _ in iter(stop.is_set, True)], daemon=True
    )
    probe.start = thread.start
    yield probe
    stop.set()
    if thread.is_alive():
        thread.join(timeout=2.0)
    probe.close()


@pytest.fixture
def fake_hand_interface(monkeypatch):
    monkeypatch.setitem(gripper_action.GRIPPER_INTERFACES, "fake_franka", FAKE_HAND)


def _wait(predicate, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not predicate():
        time.sleep(0.02)
    return predicate()


def _connect(config) -> Ros2ControlBridge:
    bridge = Ros2ControlBridge(dataclasses.replace(config, connect_timeout_s=10.0), control_rate_hz=20.0)
    bridge.connect()
    return bridge


@pytest.mark.parametrize("preset", ["franka", "ur"])
def test_each_preset_streams_the_controllers_message_type_frame_and_qos_as_the_only_publisher(probe, preset):
    cell = FakeCell(probe, CELLS[preset])
    probe.start()
    bridge = _connect(dataclasses.replace(config_with_preset(preset), gripper_action=""))  # the gripper: below
    try:
        state = bridge.read()
        np.testing.assert_allclose(state.ee_pos_m, TOOL_M)
        assert state.q_rad.shape == (len(CELLS[preset]["joints"]),)
        target = TOOL_M + np.array([0.01, -0.02, 0.0])
        # streamed, as the arm node does: a target sent before the controller's reader has matched this writer is
        # not delivered (reliable, volatile), so the first may be lost on a loaded machine (the suite saw 4 of 5)
        end = time.monotonic() + 5.0
        while len(cell.accepted) < 5 and time.monotonic() < end:
            bridge.send_pose_target(target, TOOL_QUAT)
            time.sleep(0.05)
        assert _wait(lambda: len(cell.accepted) >= 5), (len(cell.accepted), [m.header.frame_id for m in cell.dropped])
        assert cell.dropped == []
        last = cell.accepted[-1].pose
        np.testing.assert_allclose([last.position.x, last.position.y, last.position.z], target)
        np.testing.assert_allclose(
            [last.orientation.w, last.orientation.x, last.orientation.y, last.orientation.z], TOOL_QUAT
        )
        # as CRISP checks before using a target: one publisher, of this type, reliable (what a reliable reader needs)
        publishers = probe.node.get_publishers_info_by_topic(CELLS[preset]["target_topic"])
        assert len(publishers) == 1, [p.node_name for p in publishers]
        assert publishers[0].topic_type == "geometry_msgs/msg/PoseStamped"
        assert publishers[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert publishers[0].qos_profile.durability == DurabilityPolicy.VOLATILE
    finally:
        bridge.disconnect()


def test_a_cell_whose_controller_does_not_subscribe_fails_connect_naming_the_command_topic(probe):
    FakeCell(probe, CELLS["ur"])  # state flows, but the controller listens elsewhere: every target would be lost
    probe.start()
    config = dataclasses.replace(config_with_preset("ur"), gripper_action="", pose_command_topic="/nobody/target")
    with pytest.raises(AdapterError, match=r"nothing subscribes to /nobody/target within 1.0 s: is the controller"):
        Ros2ControlBridge(dataclasses.replace(config, connect_timeout_s=1.0), control_rate_hz=20.0).connect()


def test_a_gripper_topic_nobody_reads_fails_connect_naming_it(probe):
    FakeCell(probe, CELLS["ur"])  # the arm's controller subscribes; no gripper driver reads the gripper's topic
    probe.start()
    config = dataclasses.replace(config_with_preset("ur"), gripper_action="", gripper_command_topic="/nobody/gripper")
    with pytest.raises(AdapterError, match=r"nothing subscribes to /nobody/gripper within 1.0 s"):
        Ros2ControlBridge(dataclasses.replace(config, connect_timeout_s=1.0), control_rate_hz=20.0).connect()


@needs_test_msgs
def test_the_franka_gripper_takes_one_goal_per_open_or_close_and_its_finger_state_is_the_width(
    probe, fake_hand_interface
):
    cell = FakeCell(probe, CELLS["franka"])
    hand = FakeHand(probe, cell)
    probe.start()
    config = config_with_preset("franka")
    bridge = _connect(dataclasses.replace(config, gripper_action="fake_franka", gripper_force_n=30.0))
    try:
        assert _wait(lambda: abs(bridge.read().gripper_width_m - 0.08) < 1e-9)
        for closing in (0.2, 0.7, 0.9, 1.0, 1.0, 0.8):  # the policy's command every period: closes once
            bridge.set_gripper(closing)
            time.sleep(0.06)
        assert _wait(lambda: abs(bridge.read().gripper_width_m - 0.02) < 1e-9), bridge.read().gripper_width_m
        assert hand.goals == [("move", 0.08, 30.0), ("grasp", 0.0, 30.0)]
        assert bridge.gripper.last_outcome == "ok"
        bridge.set_gripper(0.1)
        assert _wait(lambda: abs(bridge.read().gripper_width_m - 0.08) < 1e-9)
        assert hand.goals[2:] == [("move", 0.08, 30.0)]
        hand.object_m = None  # a grasp on nothing: reported, and the state says closed
        bridge.set_gripper(1.0)
        assert _wait(lambda: bridge.gripper.last_outcome == "failed: grasped nothing")
        assert _wait(lambda: bridge.read().gripper_width_m == 0.0) and len(hand.goals) == 4
    finally:
        bridge.disconnect()


def test_a_robotiq_knuckle_on_the_shared_joint_states_reads_as_the_finger_gap(probe):
    cell = FakeCell(probe, CELLS["ur"])
    cell.knuckle_rad = 0.6
    probe.start()
    config = dataclasses.replace(
        config_with_preset("ur"),
        gripper_state_topic="/joint_states",
        gripper_joint_names=(KNUCKLE,),
        gripper_closed_position=0.8,
    )
    bridge = _connect(config)
    try:  # 0.6 of 0.8 rad closed: a quarter of 85 mm open, and the arm's own messages (no knuckle) change nothing
        assert _wait(lambda: abs(bridge.read().gripper_width_m - 0.085 * 0.25) < 1e-9), bridge.read().gripper_width_m
        time.sleep(0.2)
        assert abs(bridge.read().gripper_width_m - 0.085 * 0.25) < 1e-9
    finally:
        bridge.disconnect()


def test_without_franka_msgs_the_franka_preset_fails_configure_saying_what_to_source():
    try:
        import franka_msgs  # noqa: F401

        pytest.skip("franka_msgs is importable here")
    except ImportError:
        pass
    with pytest.raises(
        AdapterError,
        match=r"'franka' needs franka_msgs/action/Move, but the Python package "
        r"franka_msgs is not importable: source the ROS 2 workspace",
    ):
        Ros2ControlBridge(config_with_preset("franka")).connect()
    with pytest.raises(ValueError, match="gripper_action and gripper_command_topic are both set"):
        Ros2ControlBridge(dataclasses.replace(config_with_preset("franka"), gripper_command_topic="/x"))


@needs_test_msgs
def test_a_gripper_action_server_that_does_not_answer_fails_configure_clearly(fake_hand_interface):
    config = dataclasses.replace(
        config_with_preset("franka"),
        gripper_action="fake_franka",
        gripper_action_namespace="/nobody_here",
        connect_timeout_s=0.5,
    )
    with pytest.raises(
        AdapterError,
        match=r"no test_msgs/action/NestedMessage action server at /nobody_here/move "
        r"within 0.5 s: is the gripper driver running",
    ):
        Ros2ControlBridge(config).connect()


def test_the_goals_fill_the_fields_of_the_released_action_definitions():
    """franka_msgs Move/Grasp and control_msgs ParallelGripperCommand field names (from their .action files)."""
    from types import SimpleNamespace as NS

    opened, closed = GripperGoal(False, 0.08, 0.1, 20.0, 0.0), GripperGoal(True, 0.0, 0.1, 20.0, 0.8)
    franka_open, franka_close = gripper_action.GRIPPER_INTERFACES["franka"]
    move, grasp = NS(width=None, speed=None), NS(width=None, speed=None, force=None, epsilon=NS(inner=None, outer=None))
    franka_open.fill(move, opened)
    franka_close.fill(grasp, closed)
    assert (franka_open.type_name, franka_open.action_name, vars(move)) == (
        "franka_msgs/action/Move",
        "move",
        {"width": 0.08, "speed": 0.1},
    )
    assert (franka_close.type_name, franka_close.action_name, grasp.width, grasp.force) == (
        "franka_msgs/action/Grasp",
        "grasp",
        0.0,
        20.0,
    )
    assert grasp.epsilon.inner >= 0 and grasp.epsilon.outer >= 0.08  # any grasped width counts as success
    assert franka_close.outcome(NS(success=False, error="no object")) == (False, "no object")
    parallel = gripper_action.GRIPPER_INTERFACES["parallel_gripper"][1]
    goal = NS(command=NS(name=None, position=None, effort=None))
    parallel.fill(goal, closed)
    assert parallel.type_name == "control_msgs/action/ParallelGripperCommand" and goal.command.position == [0.8]
    assert parallel.outcome(NS(reached_goal=False, stalled=True))[0] is True
    assert parallel.outcome(NS(reached_goal=False, stalled=False))[0] is False
