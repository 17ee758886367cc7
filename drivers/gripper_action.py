"""`GripperActions`: a gripper commanded through its ROS 2 driver's actions, for the ros2_control bridge.

Real gripper drivers take goals, not a streamed topic: franka_ros2's `franka_gripper` node serves
`franka_msgs/action/Move` (`<ns>/move`: open to a width) and `Grasp` (`<ns>/grasp`: close with a force until
something is held), and a ros2_control `parallel_gripper_action_controller/GripperActionController` (what
`ros2_robotiq_gripper` starts as `robotiq_gripper_controller` on Jazzy) serves
`control_msgs/action/ParallelGripperCommand` (`<ns>/gripper_cmd`, the goal a JointState with one position).
The policy's gripper command (0 open .. 1 closed, every control period) is turned into a goal only when it
crosses one half, so the driver sees one goal per open or close, never a stream; a goal still running is
cancelled first. The result is logged when it fails (a grasp that closed on nothing is one); the gripper's
state comes from the finger joint state the driver publishes (read by the bridge).

The message packages are not on PyPI (they come with the ROS 2 workspace that built the driver), so each
action type is imported by name at `connect`, with a clear error when the package is missing. The known
interfaces are in `GRIPPER_INTERFACES`; each names its open and close calls and how to fill their goals.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.action import ActionClient
from rclpy.node import Node

from robot_rl_drivers.adapters import AdapterError


@dataclass(frozen=True)
class GripperGoal:
    """What one goal asks for, in the units each interface picks from."""

    closing: bool
    width_m: float  # target finger gap (franka Move: max width when opening, 0 when grasping)
    speed_m_s: float
    force_n: float  # grasp force (franka Grasp) / max effort (ParallelGripperCommand)
    position: float  # joint position for ParallelGripperCommand: 0 open, `closed_position` closed


@dataclass(frozen=True)
class ActionCall:
    """One action of a gripper driver: its type, its name under the configured namespace, how to fill its
    goal and how to read its result ((ok, why) from the result message)."""

    type_name: str  # "<package>/action/<Name>"
    action_name: str  # relative to the namespace; "" = the namespace is the action's name
    fill: Callable[[Any, GripperGoal], None]
    outcome: Callable[[Any], tuple[bool, str]]


def _fill_move(goal, g: GripperGoal) -> None:
    goal.width, goal.speed = float(g.width_m), float(g.speed_m_s)


def _fill_grasp(goal, g: GripperGoal) -> None:
    goal.width, goal.speed, goal.force = float(g.width_m), float(g.speed_m_s), float(g.force_n)
    # any gap from fully closed to fully open counts as a grasp: the object's width is not known beforehand
    goal.epsilon.inner, goal.epsilon.outer = 0.005, 1.0


def _franka_outcome(result) -> tuple[bool, str]:
    return bool(result.success), str(result.error)


def _fill_parallel(goal, g: GripperGoal) -> None:
    goal.command.name = []  # the controller has one joint; it reads position[0] (and effort[0] when configured)
    goal.command.position, goal.command.effort = [float(g.position)], [float(g.force_n)]


def _parallel_outcome(result) -> tuple[bool, str]:
    ok = bool(result.reached_goal or result.stalled)  # stalled = closed on an object
    return ok, "" if ok else "neither reached the goal nor stalled"


_PARALLEL = ActionCall("control_msgs/action/ParallelGripperCommand", "", _fill_parallel, _parallel_outcome)
# name -> (open call, close call)
GRIPPER_INTERFACES: dict[str, tuple[ActionCall, ActionCall]] = {
    "franka": (
        ActionCall("franka_msgs/action/Move", "move", _fill_move, _franka_outcome),
        ActionCall("franka_msgs/action/Grasp", "grasp", _fill_grasp, _franka_outcome),
    ),
    "parallel_gripper": (_PARALLEL, _PARALLEL),
}


def resolve_action_type(type_name: str, interface: str):
    """The Python class of "<package>/action/<Name>"; AdapterError naming the package when it is missing."""
    package, _, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.action"), name)
    except (ImportError, AttributeError):
        raise AdapterError(
            f"ros2_control.gripper_action {interface!r} needs {type_name}, but the Python package "
            f"{package} is not importable: source the ROS 2 workspace that has it (it is not on PyPI) "
            'before starting the arm node, or set ros2_control.gripper_action to ""'
        ) from None


class GripperActions:
    """Open/close goals to a gripper driver's actions on `node` (spun by the caller's executor)."""

    def __init__(self, node: Node, interface: str, namespace: str, goal_open: GripperGoal, goal_close: GripperGoal):
        if interface not in GRIPPER_INTERFACES:
            raise AdapterError(
                f"ros2_control.gripper_action {interface!r}; choose one of {sorted(GRIPPER_INTERFACES) + ['']}"
            )
        self.node, self.interface = node, interface
        self._goals = (goal_open, goal_close)
        self._clients: list[tuple[ActionClient, ActionCall, str, Any]] = []  # (client, call, name, action type)
        for call in GRIPPER_INTERFACES[interface]:
            name = f"{namespace.rstrip('/')}/{call.action_name}" if call.action_name else namespace
            action_type = resolve_action_type(call.type_name, interface)
            self._clients.append((ActionClient(node, action_type, name), call, name, action_type))
        self.wanted: bool | None = None  # the state asked for by the last command (True: closed)
        self.sent: bool | None = None  # the state of the last goal sent, None before the first
        self.goals_sent = 0
        self.last_outcome = ""  # "" until a result came: "ok" or "failed: why"
        self._active = None  # the goal handle of the goal in flight

    def wait_for_servers(self, timeout_s: float) -> None:
        for client, call, name, _ in self._clients:
            if not client.wait_for_server(timeout_sec=timeout_s):
                raise AdapterError(
                    f"no {call.type_name} action server at {name} within {timeout_s} s: is the gripper "
                    f"driver running (ros2_control.gripper_action {self.interface!r}, "
                    "ros2_control.gripper_action_namespace)?"
                )

    def command(self, closing: float) -> None:
        """Ask for open (< 0.5) or closed (any thread); `flush` sends it."""
        self.wanted = bool(closing >= 0.5)

    def flush(self) -> None:
        """On the executor's thread (rclpy's action client is not thread-safe): a goal when the state asked for
        changed (or the first time); nothing while the command stays on one side of one half."""
        want = self.wanted
        if want is None or want == self.sent:
            return
        if self._active is not None:
            self._active.cancel_goal_async()
            self._active = None
        client, call, _, action_type = self._clients[int(want)]
        goal = action_type.Goal()
        call.fill(goal, self._goals[int(want)])
        self.sent, self.goals_sent = want, self.goals_sent + 1
        client.send_goal_async(goal).add_done_callback(lambda future: self._accepted(future, call))

    def _accepted(self, future, call: ActionCall) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._report(call, False, "goal rejected")
            return
        self._active = handle
        handle.get_result_async().add_done_callback(lambda f: self._finished(f, call, handle))

    def _finished(self, future, call: ActionCall, handle) -> None:
        if self._active is handle:
            self._active = None
        answer = future.result()
        if answer is None:
            return
        ok, why = call.outcome(answer.result)
        self._report(call, ok, why)

    def _report(self, call: ActionCall, ok: bool, why: str) -> None:
        self.last_outcome = "ok" if ok else f"failed: {why}"
        if not ok:
            self.node.get_logger().warning(f"gripper {call.type_name.rsplit('/', 1)[-1]} failed: {why}")

    def destroy(self) -> None:
        for client, *_ in self._clients:
            client.destroy()
        self._clients = []
