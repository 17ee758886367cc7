"""The live half of `robot-rl check SETUP`: one rclpy node listens to a running cell and measures it.

For each robot of the plan (`robot_rl.nodes.check_plan`) it subscribes to the inputs an actor reads
(joint_states, ee_pose, ee_twist, gripper_state, each camera's image_raw and camera_info) with the QoS the
robot publishes them with (`robot_rl.ros.topics`), to `arm_status` and, for a simulated robot, to its clock
(the stamps' clock: staleness is measured on it); reads the arm node's and the actor's parameters through their
parameter services; looks up who subscribes to `estop`; and, when asked, runs the dry hold test (zero-motion
`ee_command` for a second). `verdicts()` turns what it measured into one `Verdict` per check and robot.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.srv import GetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import parameter_value_to_python
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String

from robot_rl.nodes import check_plan as plan
from robot_rl.nodes.check_plan import RobotPlan, Verdict
from robot_rl.nodes.spinning import spin_until
from robot_rl.ros import topics
from robot_rl.ros.convert import seconds_from_stamp

ESTOP, ARM_STATUS = "estop", "arm_status"  # the arm node's (robot_rl_drivers.arm_node)
STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
PARAM_TIMEOUT_S = 10.0  # a node busy starting (a sim loading its scene) answers late
STATE_TOPICS = (
    (topics.JOINT_STATES, JointState),
    (topics.EE_POSE, PoseStamped),
    (topics.EE_TWIST, TwistStamped),
    (topics.GRIPPER_STATE, JointState),
)


class RobotRecord:
    """What one robot's topics carried: stamps, frame ids, the newest tool position, joint names, intrinsics."""

    def __init__(self):
        self.stamps: dict[str, list[float]] = defaultdict(list)
        self.frames: dict[str, set[str]] = defaultdict(set)
        self.clock_s: float | None = None
        self.tool_m: tuple[float, float, float] | None = None
        self.tool_trace: list[np.ndarray] | None = None  # positions during the hold test
        self.joint_names: tuple[str, ...] = ()
        self.k: dict[str, list[float]] = {}
        self.statuses: list[dict] = []

    def on_message(self, topic: str, msg) -> None:
        self.stamps[topic].append(seconds_from_stamp(msg.header.stamp))
        self.frames[topic].add(msg.header.frame_id)
        if isinstance(msg, PoseStamped):
            p = msg.pose.position
            self.tool_m = (p.x, p.y, p.z)
            if self.tool_trace is not None:
                self.tool_trace.append(np.array(self.tool_m))
        elif topic == topics.JOINT_STATES:
            self.joint_names = tuple(msg.name)
        elif isinstance(msg, CameraInfo):
            self.k[topic] = [float(x) for x in msg.k]


class CellProbe:
    """The check's rclpy node, in its own context."""

    def __init__(self, robots: list[RobotPlan]):
        self.robots = robots
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = Node("robot_rl_check", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.records = {r.label: RobotRecord() for r in robots}
        self.arm_live: dict[str, dict] = {}
        self.actor_live: dict[str, dict] = {}
        for robot in robots:
            self._subscribe(robot, self.records[robot.label])

    def _subscribe(self, robot: RobotPlan, rec: RobotRecord) -> None:
        def keep(topic):
            return lambda msg: rec.on_message(topic, msg)

        for topic, msg_type in STATE_TOPICS:
            self.node.create_subscription(msg_type, robot.topic(topic), keep(topic), topics.STATE_QOS)
        self.node.create_subscription(
            String, robot.topic(ARM_STATUS), lambda m: rec.statuses.append(_json(m.data)), STATUS_QOS
        )
        clock = robot.clock_topic()
        if clock is not None:
            self.node.create_subscription(
                Clock, clock, lambda m: setattr(rec, "clock_s", seconds_from_stamp(m.clock)), topics.CLOCK_QOS
            )

    def subscribe_cameras(self, robot: RobotPlan, cameras: list[str]) -> None:
        """Cameras are known once the arm node's parameters are (the sim robot's `cameras`)."""
        rec = self.records[robot.label]
        for cam in cameras:
            for topic, msg_type in ((topics.image_topic(cam), Image), (topics.camera_info_topic(cam), CameraInfo)):
                self.node.create_subscription(
                    msg_type, robot.topic(topic), lambda m, t=topic: rec.on_message(t, m), topics.SENSOR_QOS
                )

    # --- reading the cell -------------------------------------------------------------------------
    def parameters(self, fqn: str, names: tuple[str, ...]) -> dict | None:
        """{name: value} of a running node's declared parameters; None if its parameter service did not answer."""
        client = self.node.create_client(GetParameters, f"{fqn}/get_parameters")
        try:
            if not client.wait_for_service(timeout_sec=PARAM_TIMEOUT_S):
                return None
            future = client.call_async(GetParameters.Request(names=list(names)))
            self.executor.spin_until_future_complete(future, timeout_sec=PARAM_TIMEOUT_S)
            if not future.done() or future.result() is None:
                return None
            values = [parameter_value_to_python(v) for v in future.result().values]
            if len(values) != len(names):  # one of them is not declared there: ROS answers none
                return None
            return {n: v for n, v in zip(names, values) if v is not None}
        finally:
            self.node.destroy_client(client)

    def read_parameters(self) -> None:
        for robot in self.robots:
            names = plan.ARM_PARAMS + (plan.SIM_PARAMS if robot.is_sim else ())
            self.arm_live[robot.label] = self.parameters(robot.arm.fqn, names)
            if robot.actor is not None:
                self.actor_live[robot.label] = self.parameters(robot.actor.fqn, plan.ACTOR_PARAMS)

    def spin_for(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def now_s(self, robot: RobotPlan) -> float | None:
        """The robot's clock now: its sim clock's newest value, else wall time (hardware stamps)."""
        if robot.clock_topic() is not None:
            return self.records[robot.label].clock_s
        return time.time()

    def estop_subscribers(self, robot: RobotPlan) -> list[str]:
        infos = self.node.get_subscriptions_info_by_topic(robot.topic(ESTOP))
        return sorted(f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos)

    def commanders(self, robot: RobotPlan) -> list[str]:
        """Other nodes that publish the arm's motion commands (an actor, a teleop bridge): the hold test waits for none."""
        infos = [
            i
            for topic in (topics.EE_COMMAND, topics.EE_TARGET)
            for i in self.node.get_publishers_info_by_topic(robot.topic(topic))
        ]
        return sorted(
            {f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos if i.node_name != self.node.get_name()}
        )

    def hold_test(self, robot: RobotPlan, base_frame: str, rate_hz: float) -> tuple[float | None, int, str]:
        """Stream zero tool velocity for HOLD_DURATION_S: (largest tool displacement m, commands applied, hold reason)."""
        rec = self.records[robot.label]
        pub = self.node.create_publisher(TwistStamped, robot.topic(topics.EE_COMMAND), topics.COMMAND_QOS)
        spin_until(
            self.executor, lambda: pub.get_subscription_count() >= 1, 5.0
        )  # the arm node matched it (else: none applied)
        applied_before = max((s.get("commands_applied", 0) for s in rec.statuses), default=0)
        seen_before = len(rec.statuses)
        rec.tool_trace = []
        end = time.monotonic() + plan.HOLD_DURATION_S
        while time.monotonic() < end:
            msg = TwistStamped()
            msg.header.frame_id = base_frame
            pub.publish(msg)
            self.spin_for(1.0 / rate_hz)
        self.spin_for(0.2)
        trace, rec.tool_trace = rec.tool_trace, None
        self.node.destroy_publisher(pub)
        during = rec.statuses[seen_before:]
        applied = max((s.get("commands_applied", 0) for s in during), default=applied_before) - applied_before
        reason = during[-1].get("hold_reason", "") if during else "no arm_status during the test"
        if len(trace) < 2:
            return None, applied, reason
        return float(max(np.linalg.norm(p - trace[0]) for p in trace)), applied, reason

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def robot_verdicts(probe: CellProbe, robot: RobotPlan, hold: bool, policy: tuple[dict, int] | None) -> list[Verdict]:
    """Every check of one robot, from what the probe measured (call after listening); `policy`: (obs spec, action
    dim) of a policy to compare with the actor's layout."""
    label, rec = robot.label, probe.records[robot.label]
    live = probe.arm_live.get(robot.label)
    out = (
        []
        if live is not None
        else [
            Verdict("FAIL", label, "parameters", f"{robot.arm.fqn} did not answer", "the arm node's parameter service")
        ]
    )
    live = live or {}
    rate_hz = float(robot.expected("control_rate_hz", live, 50.0))
    staleness_s = float(robot.actor_table.get("max_staleness_s", plan.DEFAULT_MAX_STALENESS_S))
    now_s = probe.now_s(robot)
    clock = f"{robot.clock_topic()} (sim time)" if robot.clock_topic() else "wall time"
    for topic, _ in STATE_TOPICS:
        out.append(plan.topic_verdict(label, topic, rec.stamps[topic], now_s, rate_hz, staleness_s, clock))
    cameras = robot.cameras(live)
    for cam, (cam_rate_hz, _) in cameras.items():
        out.append(
            plan.topic_verdict(
                label,
                topics.image_topic(cam),
                rec.stamps[topics.image_topic(cam)],
                now_s,
                cam_rate_hz,
                max(staleness_s, 1.5 / cam_rate_hz),
                clock,
            )
        )
        out.append(plan.camera_info_verdict(label, cam, rec.k.get(topics.camera_info_topic(cam))))
    base_frame = str(robot.expected("base_frame", live, topics.BASE_FRAME))
    frames = {topics.EE_POSE: base_frame, topics.EE_TWIST: base_frame}
    for cam, (_, frame_id) in cameras.items():
        frames |= {topics.image_topic(cam): frame_id, topics.camera_info_topic(cam): frame_id}
    out.append(plan.frames_verdict(label, rec.frames, frames))
    box = workspace(label, robot, rec, live)
    out.append(box)
    out.append(
        plan.estop_verdict(
            label, robot.arm.fqn, probe.estop_subscribers(robot), rec.statuses[-1] if rec.statuses else None
        )
    )
    out.append(plan.watchdog_verdict(label, live.get("watchdog_timeout_s")))
    if robot.actor is not None:
        actor = (probe.actor_live.get(robot.label) or {}) | robot.actor_table
        out.append(plan.layout_verdict(label, actor, rec.joint_names, policy))
    elif policy is not None:
        out.append(
            Verdict("WARN", label, "layout", "no actor in this robot's table", "the policy compared with an actor")
        )
    if hold and box.status != "PASS":  # outside its box the arm node brings the tool back: a zero command moves it
        out.append(
            Verdict(
                "WARN",
                label,
                "hold test",
                "not run: the tool is not known to be inside its box",
                "the tool inside the box; outside it the arm node brings the tool back",
            )
        )
    elif hold and (others := probe.commanders(robot)):
        out.append(
            Verdict(
                "WARN",
                label,
                "hold test",
                f"not run: {', '.join(others)} command the arm",
                "no other node publishing ee_command or ee_target",
            )
        )
    elif hold:
        out.append(plan.hold_verdict(label, *probe.hold_test(robot, base_frame, rate_hz)))
    return out


def workspace(label: str, robot: RobotPlan, rec: RobotRecord, live: dict) -> Verdict:
    """The running arm node's box: a sim robot's is its task's (robot_rl.cell); a hardware arm node's its
    workspace_file (when readable here) or its corners."""
    from robot_rl.cell import TASKS

    if robot.is_sim and live.get("task") in TASKS:
        box = TASKS[live["task"]].workspace
        return plan.workspace_verdict(label, rec.tool_m, box.low_m, box.high_m, f"task {live['task']}")
    if live.get("workspace_file"):
        try:
            from robot_rl_calibration.io import load_workspace

            box = load_workspace(live["workspace_file"])
        except (OSError, ValueError) as err:
            return Verdict(
                "WARN",
                label,
                "workspace",
                f"cannot read {live['workspace_file']} here: {err}",
                "the arm node's workspace_file",
            )
        return plan.workspace_verdict(label, rec.tool_m, box.low_m, box.high_m, live["workspace_file"])
    return plan.workspace_verdict(
        label, rec.tool_m, live.get("workspace_low_m"), live.get("workspace_high_m"), "workspace_low_m/high_m"
    )
