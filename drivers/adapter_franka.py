"""`FrankaAdapter`: a Franka (Panda / FR3) arm and Franka Hand over `franky` (pip: franky-control).

Pose mode (default `pose_controller: impedance`) runs one franky `CartesianImpedanceTrackingMotion` (a
Cartesian impedance controller on libfranka's torque interface) and moves its reference to each new target;
`pose_controller: motion` instead sends a `CartesianMotion` per target (franky's trajectory generator).
Velocity mode sends short `CartesianVelocityMotion`s. libfranka reflexes (collision, joint limits, communication) raise franky
exceptions: they become `fault()` and `recover()` calls `recover_from_errors`.

Run the node on the machine wired to the robot's FCI port, with a real-time kernel (libfranka needs it),
FCI enabled in Desk and the brakes open. The tool point is the end-effector frame configured in Desk
(the Franka Hand's TCP by default), in the robot base frame.

Not run on hardware in this project: written against franky's documented API.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl.interfaces import RobotSpec, RobotState, WorkspaceBox
from robot_rl_drivers.adapters import COMMAND_MODES, AdapterError, ArmAdapter, require_sdk
from robot_rl_drivers.arm_pose import wxyz_from_xyzw, xyzw_from_wxyz

JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 8))  # published names: the sim's (robot_rl.nodes.actor_inputs)
HAND_MAX_WIDTH_M = 0.08
POSE_CONTROLLERS = ("impedance", "motion")


@dataclass(frozen=True)
class FrankaConfig:
    """Parameters of the Franka adapter (ROS parameters `franka.<field>` of the arm node)."""

    robot_ip: str = "172.16.0.2"  # the FCI address of the arm (Franka's default)
    command_mode: str = (
        "pose"  # pose: absolute targets (see pose_controller); velocity: CartesianVelocityMotion per twist
    )
    pose_controller: str = "impedance"  # impedance: one CartesianImpedanceTrackingMotion fed each target; motion: a CartesianMotion per target
    translational_stiffness: float = 500.0  # impedance: N/m (critically damped)
    rotational_stiffness: float = 50.0  # impedance: Nm/rad
    relative_dynamics_factor: float = 0.1  # franky's scale of velocity, acceleration and jerk limits, (0, 1]
    realtime_kernel: bool = True  # libfranka enforces a real-time kernel; False only for simulators (franky-sim)
    gripper: bool = True  # a Franka Hand is attached
    gripper_speed_m_s: float = 0.1  # finger speed of gripper moves
    gripper_force_n: float = 20.0  # grasp force when closing fully
    gripper_poll_s: float = 0.05  # the hand is commanded and its width read in a background thread at this period
    # `reset` moves here (7 joints): the hand's TCP at (0.50, 0.00, 0.25) m pointing down, inside the default boxes
    # (franka_ros2's start pose (0, -pi/4, 0, -3pi/4, 0, pi/2, pi/4) puts it at (0.307, 0, 0.487): outside them)
    home_q_rad: tuple[float, ...] = (0.0, -0.042, 0.0, -2.334, 0.0, 2.293, 0.785)
    workspace_low_m: tuple[float, float, float] = (0.3, -0.3, 0.02)  # the arm's own box (the node's box applies too)
    workspace_high_m: tuple[float, float, float] = (0.75, 0.3, 0.5)


class FrankaAdapter(ArmAdapter):
    name = "franka"
    config_class = FrankaConfig

    def __init__(self, config: FrankaConfig = FrankaConfig(), control_rate_hz: float = 10.0):
        if config.command_mode not in COMMAND_MODES:
            raise ValueError(f"franka.command_mode {config.command_mode!r}; choose one of {list(COMMAND_MODES)}")
        if config.pose_controller not in POSE_CONTROLLERS:
            raise ValueError(
                f"franka.pose_controller {config.pose_controller!r}; choose one of {list(POSE_CONTROLLERS)}"
            )
        if len(config.home_q_rad) != 7:
            raise ValueError(f"franka.home_q_rad needs 7 joint angles, got {len(config.home_q_rad)}")
        super().__init__(config, control_rate_hz)
        self.command_mode = config.command_mode
        self._franky: Any = None
        self._robot: Any = None
        self._gripper: Any = None
        self._gripper_goal: float | None = None  # closing the gripper thread sends next
        self._tracking: Any = None  # the running CartesianImpedanceTrackingMotion (pose_controller impedance)
        self._width_m = 0.0
        self._fault = ""
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # --- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        cfg = self.config
        self._franky = require_sdk("franky", "franky-control", self.name)
        try:
            realtime = (
                self._franky.RealtimeConfig.Enforce if cfg.realtime_kernel else self._franky.RealtimeConfig.Ignore
            )
            self._robot = self._franky.Robot(cfg.robot_ip, realtime_config=realtime)
            self._robot.recover_from_errors()
            self._robot.relative_dynamics_factor = cfg.relative_dynamics_factor
            if cfg.gripper:
                self._gripper = self._franky.Gripper(cfg.robot_ip)
                self._width_m = float(self._gripper.width)
        except Exception as err:  # franky raises its own exception types (and RuntimeError) from libfranka
            raise AdapterError(
                f"cannot connect to the Franka at {cfg.robot_ip}: {err} (is FCI enabled in Desk, the "
                "brakes open, and this a real-time kernel?)"
            ) from None
        self.spec = RobotSpec(
            name="franka",
            joint_names=JOINT_NAMES,
            control_rate_hz=self.control_rate_hz,
            workspace=WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m)),
            max_step_m=0.03,
            max_step_rad=0.15,
            gripper_max_width_m=HAND_MAX_WIDTH_M,
        )
        if self._gripper is not None:
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll_gripper, name="franka_gripper_width", daemon=True)
            self._poller.start()

    def _poll_gripper(self) -> None:
        """All hand I/O happens in this thread: its commands and width reads block (and serialise on the hand's
        connection), which must never stall the arm's control period."""
        cfg = self.config
        while not self._stop.wait(cfg.gripper_poll_s):
            closing, self._gripper_goal = self._gripper_goal, None
            try:
                if closing is not None and closing >= 0.99:  # closing fully: a grasp holds an object with a set force
                    self._gripper.grasp_async(
                        0.0, cfg.gripper_speed_m_s, cfg.gripper_force_n, epsilon_outer=HAND_MAX_WIDTH_M
                    )
                elif closing is not None:
                    self._gripper.move_async(HAND_MAX_WIDTH_M * (1.0 - closing), cfg.gripper_speed_m_s)
            except Exception as err:
                self._fault = f"franka gripper command failed: {err}"
            try:
                self._width_m = float(self._gripper.width)
            except Exception:  # a gripper hiccup must not kill the thread; the last width stays
                continue

    def disconnect(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=1.0)
        if self._robot is not None and self._tracking is not None:
            try:
                self._robot.stop()
            except Exception:  # leaving anyway
                pass
        self._robot, self._gripper, self._poller, self._tracking = None, None, None, None

    def _call(self, what: str, fn, *args, **kw):
        """Run an SDK call; a franky/libfranka error becomes the adapter's fault and an AdapterError."""
        if self._robot is None:
            raise AdapterError("the Franka is not connected; configure the node first")
        try:
            return fn(*args, **kw)
        except Exception as err:
            self._fault = f"franka {what} failed: {err}"
            raise AdapterError(self._fault) from None

    # --- state --------------------------------------------------------------------------------
    def read(self) -> RobotState:
        joints = self._call("joint state read", lambda: self._robot.current_joint_state)
        cart = self._call("cartesian state read", lambda: self._robot.current_cartesian_state)
        pose, twist = cart.pose.end_effector_pose, cart.velocity.end_effector_twist
        self._angvel = np.asarray(twist.angular, dtype=np.float64)
        return RobotState(
            q_rad=np.asarray(joints.position, dtype=np.float64),
            dq_rad_s=np.asarray(joints.velocity, dtype=np.float64),
            ee_pos_m=np.asarray(pose.translation, dtype=np.float64),
            ee_quat_wxyz=wxyz_from_xyzw(np.asarray(pose.quaternion, dtype=np.float64)),
            ee_linvel_m_s=np.asarray(twist.linear, dtype=np.float64),
            gripper_width_m=self._width_m,
            t_capture=time.monotonic(),
        )

    def ee_angvel_rad_s(self) -> np.ndarray:
        return getattr(self, "_angvel", np.zeros(3))

    # --- commands -----------------------------------------------------------------------------
    def _pose_motion(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, hold_target: bool = False) -> Any:
        f = self._franky
        return f.CartesianMotion(
            f.Affine(np.asarray(pos_m).tolist(), xyzw_from_wxyz(quat_wxyz).tolist()),
            f.ReferenceType.Absolute,
            return_when_finished=not hold_target,
        )

    def send_pose_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        if self.command_mode != "pose":
            return super().send_pose_target(pos_m, quat_wxyz)
        if self.config.pose_controller == "motion":
            # return_when_finished=False: the motion holds its target until the next one replaces it
            self._call(
                "pose motion",
                self._robot.move,
                self._pose_motion(pos_m, quat_wxyz, hold_target=True),
                asynchronous=True,
            )
            return
        f = self._franky
        reference = f.CartesianReference(f.Affine(np.asarray(pos_m).tolist(), xyzw_from_wxyz(quat_wxyz).tolist()))
        if self._tracking is None:  # one impedance controller stays alive; each period only moves its reference
            cfg = self.config
            self._tracking = f.CartesianImpedanceTrackingMotion(
                translational_stiffness=cfg.translational_stiffness, rotational_stiffness=cfg.rotational_stiffness
            )
            self._tracking.set_reference(reference)
            self._call("impedance tracking start", self._robot.move, self._tracking, asynchronous=True)
        else:
            self._call("impedance reference", self._tracking.set_reference, reference)

    def send_velocity(self, linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> None:
        if self.command_mode != "velocity":
            return super().send_velocity(linvel_m_s, angvel_rad_s)
        f = self._franky
        # lasts two periods, so a late next command does not stop the arm with a jerk; replaced every period
        motion = f.CartesianVelocityMotion(
            f.Twist(np.asarray(linvel_m_s).tolist(), np.asarray(angvel_rad_s).tolist()),
            duration=f.Duration(int(2000 / self.control_rate_hz)),
        )
        self._call("velocity motion", self._robot.move, motion, asynchronous=True)

    def set_gripper(self, closing: float) -> None:
        """Non-blocking: the gripper thread sends the newest goal at its next poll."""
        if self._gripper is not None:
            self._gripper_goal = float(closing)

    def hold(self) -> None:
        """Impedance tracking: its reference moves to the measured pose (the controller keeps running). Otherwise
        franky's stop motion of the running control signal (pose or velocity: it must not change while the arm
        moves) brings the arm to rest where it is."""
        if self._robot is None:
            return
        f = self._franky
        if self._tracking is not None:  # the impedance controller keeps running, its reference at the measured pose
            state = self.read()
            self._tracking.set_reference(
                f.CartesianReference(f.Affine(state.ee_pos_m.tolist(), xyzw_from_wxyz(state.ee_quat_wxyz).tolist()))
            )
            return
        stop = f.CartesianStopMotion() if self.command_mode == "pose" else f.CartesianVelocityStopMotion()
        try:
            self._robot.move(stop, asynchronous=True)
        except Exception as err:  # holding must not raise; the fault says why
            self._fault = self._fault or f"franka stop failed: {err}"

    def go_home(self) -> None:
        """A joint motion (blocking) after the Cartesian one has come to rest, then the hand opens."""
        if self._tracking is not None:  # it never ends by itself: stop it (libfranka reports the preemption)
            self._tracking = None
            try:
                self._robot.stop()
                self._robot.join_motion(5.0)
            except Exception:  # the expected preemption error of the stopped controller
                pass
            self._robot.recover_from_errors()
        else:
            self.hold()
            self._call("stop before the home move", self._robot.join_motion, 5.0)
        self._call("home move", self._robot.move, self._franky.JointMotion(list(self.config.home_q_rad)))
        self.set_gripper(0.0)

    # --- faults -------------------------------------------------------------------------------
    def fault(self) -> str:
        if not self._fault and self._robot is not None and getattr(self._robot, "has_errors", False):
            self._fault = "franka reports errors (a reflex or a safety stop); see Desk"
        return self._fault

    def recover(self) -> None:
        self._fault, self._tracking = "", None  # a reflex ended the running controller; the next target starts one
        self._call("recover_from_errors", self._robot.recover_from_errors)
        self._fault = ""
