"""The Robot, Camera and Teleop interfaces that simulation and hardware both implement.

Everything above these interfaces (envs, actor loop, safety filter, recording) is written
once and runs unchanged against the MuJoCo cell (`robot_rl_sim`) and real drivers
(`robot_rl_drivers`). `tests/contracts.py` holds the checks every implementation must pass.

Frames and units: positions in metres in the robot base frame, orientations as unit
quaternions (w, x, y, z), rotations as rotation vectors in radians, times in seconds.
`t_capture` is a monotonic-clock time (`time.monotonic()` on hardware, simulation time in sim).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import numpy as np


# --- robot ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in the base frame that the tool point may not leave."""

    low_m: tuple[float, float, float]  # (x, y, z) lower corner
    high_m: tuple[float, float, float]  # (x, y, z) upper corner

    def __post_init__(self) -> None:
        # A NaN corner passed `lo >= hi` (every comparison with NaN is False) and then clipped every target to NaN;
        # an infinite one is no limit at all. Both come from hand-written node parameters, so refuse them here.
        if len(self.low_m) != 3 or len(self.high_m) != 3:
            raise ValueError(f"workspace low {self.low_m} and high {self.high_m} must be 3 numbers each (x, y, z)")
        if not all(math.isfinite(v) for v in (*self.low_m, *self.high_m)):
            raise ValueError(f"workspace low {self.low_m} and high {self.high_m} must be finite numbers (metres)")
        if any(lo >= hi for lo, hi in zip(self.low_m, self.high_m)):
            raise ValueError(f"workspace low {self.low_m} must be below high {self.high_m} on every axis")

    def clip(self, p_m: np.ndarray) -> np.ndarray:
        return np.clip(p_m, self.low_m, self.high_m)

    def contains(self, p_m: np.ndarray, tol_m: float = 0.0) -> bool:
        p = np.asarray(p_m)
        return bool(np.all(p >= np.asarray(self.low_m) - tol_m) and np.all(p <= np.asarray(self.high_m) + tol_m))


@dataclass(frozen=True)
class RobotSpec:
    """What a robot is: joints, rates, limits."""

    name: str
    joint_names: tuple[str, ...]  # arm joints, base to tip
    control_rate_hz: float  # rate at which `command` is expected
    workspace: WorkspaceBox
    max_step_m: float  # largest translation a single command may ask for
    max_step_rad: float  # largest rotation a single command may ask for
    gripper_max_width_m: float  # fully open finger gap


@dataclass
class RobotState:
    """One reading of the arm and gripper."""

    q_rad: np.ndarray  # (n_joints,)
    dq_rad_s: np.ndarray  # (n_joints,)
    ee_pos_m: np.ndarray  # (3,) tool point in the base frame
    ee_quat_wxyz: np.ndarray  # (4,) tool orientation in the base frame
    ee_linvel_m_s: np.ndarray  # (3,)
    gripper_width_m: float  # finger gap
    t_capture: float  # monotonic seconds


@dataclass
class EECommand:
    """An end-effector command: a delta of the tool pose plus a gripper target.

    The robot moves its tool target by `delta_pos_m` (base frame) and rotates it by
    `delta_rotvec_rad` (base frame), both already in physical units and already bounded
    by the safety filter; `gripper` is the closing command in [0, 1] (0 open, 1 closed).
    """

    delta_pos_m: np.ndarray  # (3,)
    delta_rotvec_rad: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,)
    gripper: float = 0.0


class Robot(abc.ABC):
    """An arm with a parallel gripper under Cartesian control."""

    spec: RobotSpec

    @abc.abstractmethod
    def read(self) -> RobotState:
        """The latest state. Never blocks for longer than one control period."""

    @abc.abstractmethod
    def command(self, cmd: EECommand) -> None:
        """Set a new tool target relative to the current target. Non-blocking."""

    @abc.abstractmethod
    def hold(self) -> None:
        """Stop moving: the target becomes the current tool pose. Safe to call at any time."""

    @abc.abstractmethod
    def advance(self, dt_s: float) -> None:
        """Let `dt_s` of robot time pass: hardware sleeps to the next tick, simulation steps physics."""

    @abc.abstractmethod
    def go_home(self) -> None:
        """Move to the home configuration and open the gripper (blocking)."""

    def close(self) -> None:
        """Release resources; the arm is left holding."""


# --- camera --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraSpec:
    name: str  # e.g. "front", "wrist"
    width: int
    height: int
    rate_hz: float
    K: tuple[float, ...]  # 3x3 intrinsics, row major (fx, 0, cx, 0, fy, cy, 0, 0, 1)
    frame_id: str = ""  # optical frame name


@dataclass
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    t_capture: float  # monotonic seconds at capture


class Camera(abc.ABC):
    spec: CameraSpec

    @abc.abstractmethod
    def read(self) -> Frame:
        """The latest frame (RGB uint8, spec.height x spec.width)."""

    def close(self) -> None:
        """Release the device."""


# --- teleop --------------------------------------------------------------------------------
TELEOP_EVENTS = ("success", "failure", "rerecord", "take_over", "release")


@dataclass
class TeleopCommand:
    """What a person is doing with a teleop device this instant."""

    twist: np.ndarray  # (6,) normalised [-1, 1]: vx, vy, vz, wx, wy, wz in the base frame
    gripper: float | None  # desired closing in [0, 1]; None = no gripper input
    engaged: bool  # the person is acting (motion above deadband, or button held/toggled)
    events: tuple[str, ...] = ()  # members of TELEOP_EVENTS that fired since the last read
    t_capture: float = 0.0
    connected: bool = True  # False once the device is gone; the arbiter then holds the arm


class Teleop(abc.ABC):
    @abc.abstractmethod
    def read(self) -> TeleopCommand:
        """The latest command. Never blocks."""

    def close(self) -> None:
        """Release the device."""
