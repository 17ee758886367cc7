"""`ArmAdapter`: the thin interface between the arm node and one arm (sim, Franka, UR, a ROS 2 driver).

An adapter only talks to its arm: connect, read the state, send an absolute Cartesian pose target or a
Cartesian velocity, move the gripper, hold, report and clear faults, disconnect. Everything that must be
the same for every arm (safety filter, watchdog, e-stop, lifecycle, topics) lives once in `arm_node.py` and
`arm_commands.py`, for the simulated robot of the sim setups too (`robot_rl_sim.node`).
`AdapterRobot` turns any adapter into a `robot_rl.interfaces.Robot`, so the contract checks in
`tests/contracts.py` run against every adapter exactly as against the MuJoCo robot, and the arm node
drives every adapter through it.

| adapter        | module                  | SDK (pip, not a dependency) | commands                                   |
|----------------|-------------------------|-----------------------------|--------------------------------------------|
| sim            | adapter_sim.py          | (mujoco, the sim extra)     | pose target or velocity, MuJoCo cell       |
| franka         | adapter_franka.py       | franky-control              | CartesianMotion (pose) / CartesianVelocityMotion |
| ur             | adapter_ur.py           | ur_rtde                     | servoL (pose) / speedL (velocity)          |
| ros2_control   | adapter_ros2_control.py | (none: ROS topics)          | PoseStamped target / Float64MultiArray twist |
"""

from __future__ import annotations

import abc
import importlib
import time
from types import ModuleType
from typing import Any

import numpy as np

from robot_rl.interfaces import EECommand, Robot, RobotSpec, RobotState
from robot_rl.safety import command_deltas, lead_limited_target
from robot_rl_drivers.arm_pose import quat_from_rotvec, quat_mul

COMMAND_MODES = ("pose", "velocity")
# adapter name -> "module:class", imported only when chosen (SDKs are optional)
ADAPTERS = {
    "sim": "robot_rl_drivers.adapter_sim:SimArmAdapter",
    "franka": "robot_rl_drivers.adapter_franka:FrankaAdapter",
    "ur": "robot_rl_drivers.adapter_ur:URAdapter",
    "ros2_control": "robot_rl_drivers.adapter_ros2_control:Ros2ControlBridge",
}


class AdapterError(RuntimeError):
    """The arm or its SDK refused or failed: the message says what happened and what to do."""


def require_sdk(module: str, pip_name: str, adapter: str) -> ModuleType:
    """Import an SDK module that is not a dependency of robot_rl, or say which pip package provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise AdapterError(
            f"the {adapter!r} arm adapter needs the Python module {module!r} ({err}); install it with "
            f"`pip install {pip_name}` (it is not a dependency of robot_rl), or choose another adapter of {sorted(ADAPTERS)}"
        ) from None


def adapter_class(name: str) -> type[ArmAdapter]:
    """The adapter class registered under `name` (its module is imported now)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown arm adapter {name!r}; choose one of {sorted(ADAPTERS)}")
    module, cls = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


class ArmAdapter(abc.ABC):
    """One arm with a parallel gripper. Positions in metres, base frame; quaternions (w, x, y, z).

    `spec` is valid after `connect`. `command_mode` says which of `send_pose_target` / `send_velocity`
    the arm takes. Methods other than `connect` may raise `AdapterError` on a driver fault; `fault()`
    then says what is wrong until `recover()` clears it.
    """

    name: str = "arm"
    spec: RobotSpec
    command_mode: str = "pose"  # "pose": absolute tool targets; "velocity": tool twists
    finger_joints: tuple[str, str] = ("finger_joint1", "finger_joint2")  # names in gripper_state
    real_time: bool = True  # time passes on its own (hardware); False: `tick` steps it (simulation)
    config_class: type = object  # the adapter's typed config dataclass (ROS parameters `<adapter>.<field>`)

    def __init__(self, config: Any, control_rate_hz: float):
        self.config = config
        self.control_rate_hz = float(control_rate_hz)  # how often the node commands and reads it

    def attach(self, node: Any) -> None:
        """Called with the arm node before `connect`; an adapter that talks ROS creates its topics on it."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection and leave the arm holding where it is."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Stop commanding and close the connection (the arm is left holding). Safe to call twice."""

    @abc.abstractmethod
    def read(self) -> RobotState:
        """The latest state; t_capture is monotonic seconds (simulation time in sim)."""

    def ee_angvel_rad_s(self) -> np.ndarray:
        """Measured tool angular velocity (3,), base frame; zeros where the arm does not report it."""
        return np.zeros(3)

    def send_pose_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Track this absolute tool pose (already safety-filtered and close to the current pose)."""
        raise AdapterError(f"the {self.name!r} adapter takes velocities, not pose targets (command_mode=velocity)")

    def send_velocity(self, linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> None:
        """Move the tool at this twist (base frame) until the next command."""
        raise AdapterError(f"the {self.name!r} adapter takes pose targets, not velocities (command_mode=pose)")

    @abc.abstractmethod
    def set_gripper(self, closing: float) -> None:
        """Gripper target: 0 open, 1 closed. Non-blocking."""

    @abc.abstractmethod
    def hold(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Stop: keep the current tool pose. Safe to call at any time, also after a fault. Returns the pose
        (pos m, quat wxyz) the arm now holds at when that is not the measured one, else None."""

    def fault(self) -> str:
        """What is wrong with the arm now ("" when nothing is)."""
        return ""

    def recover(self) -> None:
        """Clear a fault (e.g. a reflex or protective stop) so the arm takes commands again; raises AdapterError
        when it cannot."""

    def home_pose(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The configured home tool pose (pos m, quat wxyz, base frame) for an arm without its own home move:
        the arm node's `reset` then streams targets there through its safety filter. None: use `go_home`."""
        return None

    def go_home(self) -> str | None:
        """Move to the home configuration and open the gripper (blocking). Returns what was done when that is
        more than a home move (the simulated task cell draws a new randomised episode start), else None."""
        raise AdapterError(f"the {self.name!r} adapter cannot move home; move the arm yourself")

    def tick(self, dt_s: float) -> None:
        """Called once per control period by whoever drives the arm; simulation steps physics here."""


def state_problem(state: RobotState, n_joints: int) -> str:
    """What makes a driver's state unusable ("" when nothing does): a wrong joint count, non-finite values, or an
    orientation that is not a rotation. The arm node treats such a state as a fault (hold), never as a crash."""
    q, dq = np.asarray(state.q_rad, dtype=np.float64), np.asarray(state.dq_rad_s, dtype=np.float64)
    if q.shape != (n_joints,) or dq.shape != (n_joints,):
        return f"{q.size} joint positions and {dq.size} velocities for {n_joints} joints"
    values = {
        "joint positions": q,
        "joint velocities": dq,
        "tool position": state.ee_pos_m,
        "tool orientation": state.ee_quat_wxyz,
        "tool velocity": state.ee_linvel_m_s,
        "gripper width": state.gripper_width_m,
    }
    bad = [name for name, v in values.items() if not np.all(np.isfinite(np.asarray(v, dtype=np.float64)))]
    if bad:
        return f"non-finite {', '.join(bad)}"
    quat = np.asarray(state.ee_quat_wxyz, dtype=np.float64)
    if quat.shape != (4,) or abs(float(np.linalg.norm(quat)) - 1.0) > 0.1:
        return f"tool orientation {quat.tolist()} is not a unit quaternion"
    return ""


class AdapterRobot(Robot):
    """Any `ArmAdapter` as a `Robot`: EECommand deltas become absolute pose targets (or velocities).

    The target is clipped to the workspace box and kept within `max_target_lead_m` of the tool, so a
    blocked arm does not wind up (as `robot_rl_sim.robot.MujocoRobot` does).
    """

    def __init__(self, adapter: ArmAdapter, max_target_lead_m: float = 0.06):
        if adapter.command_mode not in COMMAND_MODES:
            raise ValueError(
                f"adapter {adapter.name!r} has command_mode {adapter.command_mode!r}; expected one of {COMMAND_MODES}"
            )
        self.adapter = adapter
        self.spec = adapter.spec
        self.max_target_lead_m = max_target_lead_m
        self._gripper: float | None = None
        self._next_tick_s: float | None = None
        self.sync_target()

    def sync_target(self) -> None:
        """The target becomes the measured tool pose (after a hold, a home move or a recovery); outside the box
        too (not snapped in: the safety filter brings it back at its rate limits). Without a usable measurement
        (a driver fault) it stays where it was, NaN before the first one: the safety filter rejects a NaN target,
        so nothing moves until a valid state has been synced."""
        try:
            state = self.adapter.read()
            problem = state_problem(state, len(self.spec.joint_names))
        except AdapterError as err:
            problem = str(err)
        if problem:
            if not hasattr(self, "target_pos_m"):
                self.target_pos_m, self.target_quat_wxyz = np.full(3, np.nan), np.full(4, np.nan)
            return
        self.target_pos_m = np.asarray(state.ee_pos_m, dtype=np.float64).copy()
        self.target_quat_wxyz = state.ee_quat_wxyz / np.linalg.norm(state.ee_quat_wxyz)

    def read(self) -> RobotState:
        return self.adapter.read()

    def command(self, cmd: EECommand) -> None:
        delta_pos, delta_rot = command_deltas(cmd)
        tool = np.asarray(self.adapter.read().ee_pos_m, dtype=np.float64)
        target = lead_limited_target(self.target_pos_m, delta_pos, tool, self.spec.workspace, self.max_target_lead_m)
        quat = quat_mul(quat_from_rotvec(delta_rot), self.target_quat_wxyz)
        quat /= np.linalg.norm(quat)
        dt_s = 1.0 / self.spec.control_rate_hz
        if self.adapter.command_mode == "pose":
            self.adapter.send_pose_target(target, quat)
        else:
            self.adapter.send_velocity((target - self.target_pos_m) / dt_s, delta_rot / dt_s)
        self.target_pos_m, self.target_quat_wxyz = target, quat
        self.set_gripper(cmd.gripper)

    @property
    def commanded_gripper(self) -> float | None:
        """The last gripper closing sent to the arm (None before the first)."""
        return self._gripper

    def set_gripper(self, closing: float) -> None:
        """Forward a gripper target only when it changed (hardware grippers take each command as a new move)."""
        closing = min(max(float(closing), 0.0), 1.0)
        if self._gripper is None or abs(closing - self._gripper) > 1e-3:
            self.adapter.set_gripper(closing)
            self._gripper = closing

    def hold(self) -> None:
        held = self.adapter.hold()
        if held is not None:
            self.target_pos_m, self.target_quat_wxyz = np.asarray(held[0], dtype=np.float64), held[1]
        else:
            self.sync_target()

    def advance(self, dt_s: float) -> None:
        """Simulation: step `dt_s`. Hardware: sleep to the next tick of a `dt_s` grid."""
        self.adapter.tick(dt_s)
        if not self.adapter.real_time:
            return
        now = time.monotonic()
        self._next_tick_s = (
            now + dt_s if self._next_tick_s is None or self._next_tick_s < now - dt_s else self._next_tick_s + dt_s
        )
        time.sleep(max(0.0, self._next_tick_s - now))

    def go_home(self) -> str | None:
        """The adapter's home move (see `ArmAdapter.go_home`); the target follows the tool there."""
        done = self.adapter.go_home()
        self._gripper = 0.0
        self.sync_target()
        return done

    def close(self) -> None:
        try:
            self.adapter.hold()
        finally:
            self.adapter.disconnect()
