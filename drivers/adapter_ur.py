"""`URAdapter`: a Universal Robots arm (e-Series / CB3) over `ur_rtde` (pip: ur_rtde).

State from `RTDEReceiveInterface` (joint positions and speeds, TCP pose as x, y, z + rotation vector, TCP
speed); commands through `RTDEControlInterface`: pose mode streams `servoL` targets (lookahead and gain
below), velocity mode `speedL` twists. Protective stops become `fault()`; `recover()` unlocks them
through the dashboard server and re-uploads the control script. An emergency stop must be released on
the pendant first. The gripper is optional: a Robotiq 2F gripper through its URCap socket (port 63352).

Poses are in the frame RTDE reports: the controller's `base` frame (rotated 180 degrees about z from
ROS's base_link) with the TCP set on the pendant. Set the workspace box in that frame. The arm has 6
joints, published as joint1..joint6.

Not run on hardware in this project: written against ur_rtde's documented API.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl.interfaces import RobotSpec, RobotState, WorkspaceBox
from robot_rl_drivers.adapters import COMMAND_MODES, AdapterError, ArmAdapter, require_sdk
from robot_rl_drivers.arm_pose import quat_from_rotvec, rotvec_from_quat

JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 7))
GRIPPERS = ("none", "robotiq")


@dataclass(frozen=True)
class URConfig:
    """Parameters of the UR adapter (ROS parameters `ur.<field>` of the arm node)."""

    robot_ip: str = "192.168.1.102"  # the controller's address (remote control enabled on the pendant)
    command_mode: str = "pose"  # pose: servoL targets; velocity: speedL twists
    servo_lookahead_s: float = 0.1  # servoL lookahead time, 0.03-0.2 s: larger is smoother and lags more
    servo_gain: float = 300.0  # servoL proportional gain, 100-2000
    speed_accel_m_s2: float = 0.5  # speedL tool acceleration
    # `reset` moves here (6 joints): a UR5e's tool0 at (0.0, -0.475, 0.225) m in the controller base frame pointing
    # down, the middle of arm_ur.yaml's box ((0, -pi/2, pi/2, -pi/2, -pi/2, 0) puts it at (-0.49, -0.13, 0.49): outside)
    home_q_rad: tuple[float, ...] = (1.286, -1.426, 2.146, -2.290, -1.571, -0.285)
    home_speed_rad_s: float = 0.5  # joint speed of the home move
    gripper: str = "none"  # none | robotiq (Robotiq 2F URCap socket on the controller, port 63352)
    gripper_max_width_m: float = 0.085  # fully open finger gap (Robotiq 2F-85)
    workspace_low_m: tuple[float, float, float] = (-0.6, -0.6, 0.02)  # the arm's own box, controller base frame
    workspace_high_m: tuple[float, float, float] = (0.6, 0.6, 0.6)


class RobotiqSocket:
    """A Robotiq 2F gripper through the URCap's ASCII socket: SET/GET of POS (0 open .. 255 closed)."""

    def __init__(self, host: str, port: int = 63352, timeout_s: float = 2.0):
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        for line in ("SET ACT 1", "SET GTO 1", "SET SPE 255", "SET FOR 100"):
            self._ask(line)

    def _ask(self, line: str) -> str:
        self._sock.sendall((line + "\n").encode())
        return self._sock.recv(1024).decode().strip()

    def set_closing(self, closing: float) -> None:
        self._ask(f"SET POS {int(round(255 * min(max(closing, 0.0), 1.0)))}")

    def closing(self) -> float:
        answer = self._ask("GET POS")  # "POS 123"
        return int(answer.split()[-1]) / 255.0

    def close(self) -> None:
        self._sock.close()


class URAdapter(ArmAdapter):
    name = "ur"
    config_class = URConfig

    def __init__(self, config: URConfig = URConfig(), control_rate_hz: float = 10.0):
        if config.command_mode not in COMMAND_MODES:
            raise ValueError(f"ur.command_mode {config.command_mode!r}; choose one of {list(COMMAND_MODES)}")
        if config.gripper not in GRIPPERS:
            raise ValueError(f"ur.gripper {config.gripper!r}; choose one of {list(GRIPPERS)}")
        if len(config.home_q_rad) != 6:
            raise ValueError(f"ur.home_q_rad needs 6 joint angles, got {len(config.home_q_rad)}")
        super().__init__(config, control_rate_hz)
        self.command_mode = config.command_mode
        self._ctl: Any = None
        self._rcv: Any = None
        self._gripper: RobotiqSocket | None = None
        self._fault = ""

    # --- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        cfg = self.config
        rtde_control = require_sdk("rtde_control", "ur_rtde", self.name)
        rtde_receive = require_sdk("rtde_receive", "ur_rtde", self.name)
        try:
            self._rcv = rtde_receive.RTDEReceiveInterface(cfg.robot_ip)
            self._ctl = rtde_control.RTDEControlInterface(cfg.robot_ip)
            if cfg.gripper == "robotiq":
                self._gripper = RobotiqSocket(cfg.robot_ip)
        except Exception as err:  # ur_rtde raises RuntimeError; the socket OSError
            raise AdapterError(
                f"cannot connect to the UR controller at {cfg.robot_ip}: {err} (is the arm powered, "
                "in remote control, and nothing else holding its RTDE control interface?)"
            ) from None
        self.spec = RobotSpec(
            name="ur",
            joint_names=JOINT_NAMES,
            control_rate_hz=self.control_rate_hz,
            workspace=WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m)),
            max_step_m=0.03,
            max_step_rad=0.15,
            gripper_max_width_m=cfg.gripper_max_width_m,
        )

    def disconnect(self) -> None:
        for closer in (
            lambda: self._ctl.stopScript(),
            lambda: self._ctl.disconnect(),
            lambda: self._rcv.disconnect(),
            lambda: self._gripper.close(),
        ):
            try:
                closer()
            except Exception:  # already gone; closing is best effort
                pass
        self._ctl, self._rcv, self._gripper = None, None, None

    def _call(self, what: str, fn, *args):
        if self._ctl is None:
            raise AdapterError("the UR is not connected; configure the node first")
        try:
            result = fn(*args)
        except Exception as err:
            self._fault = f"ur {what} failed: {err}"
            raise AdapterError(self._fault) from None
        if result is False:  # ur_rtde control calls return False when the controller refused them
            self._fault = f"ur {what} was refused by the controller ({self.fault() or 'no reason reported'})"
            raise AdapterError(self._fault)
        return result

    # --- state --------------------------------------------------------------------------------
    def read(self) -> RobotState:
        rcv = self._rcv
        q, dq = self._call("getActualQ", rcv.getActualQ), self._call("getActualQd", rcv.getActualQd)
        pose, speed = (
            self._call("getActualTCPPose", rcv.getActualTCPPose),
            self._call("getActualTCPSpeed", rcv.getActualTCPSpeed),
        )
        self._angvel = np.asarray(speed[3:6], dtype=np.float64)
        closing = self._gripper.closing() if self._gripper is not None else 0.0
        return RobotState(
            q_rad=np.asarray(q, dtype=np.float64),
            dq_rad_s=np.asarray(dq, dtype=np.float64),
            ee_pos_m=np.asarray(pose[:3], dtype=np.float64),
            ee_quat_wxyz=quat_from_rotvec(np.asarray(pose[3:6])),
            ee_linvel_m_s=np.asarray(speed[:3], dtype=np.float64),
            gripper_width_m=self.config.gripper_max_width_m * (1.0 - closing),
            t_capture=time.monotonic(),
        )

    def ee_angvel_rad_s(self) -> np.ndarray:
        return getattr(self, "_angvel", np.zeros(3))

    # --- commands -----------------------------------------------------------------------------
    def send_pose_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        if self.command_mode != "pose":
            return super().send_pose_target(pos_m, quat_wxyz)
        cfg = self.config
        pose = [*np.asarray(pos_m, dtype=float).tolist(), *rotvec_from_quat(quat_wxyz).tolist()]
        # speed and acceleration are unused by servoL; the period is the node's control period
        self._call(
            "servoL",
            self._ctl.servoL,
            pose,
            0.0,
            0.0,
            1.0 / self.control_rate_hz,
            cfg.servo_lookahead_s,
            cfg.servo_gain,
        )

    def send_velocity(self, linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> None:
        if self.command_mode != "velocity":
            return super().send_velocity(linvel_m_s, angvel_rad_s)
        twist = [*np.asarray(linvel_m_s, dtype=float).tolist(), *np.asarray(angvel_rad_s, dtype=float).tolist()]
        self._call("speedL", self._ctl.speedL, twist, self.config.speed_accel_m_s2, 2.0 / self.control_rate_hz)

    def set_gripper(self, closing: float) -> None:
        if self._gripper is not None:
            try:
                self._gripper.set_closing(closing)
            except OSError as err:
                self._fault = f"robotiq gripper socket failed: {err}"
                raise AdapterError(self._fault) from None

    def hold(self) -> None:
        if self._ctl is None:
            return
        try:
            self._ctl.servoStop() if self.command_mode == "pose" else self._ctl.speedStop()
        except Exception as err:  # holding must not raise; the fault says why
            self._fault = self._fault or f"ur stop failed: {err}"

    def go_home(self) -> None:
        cfg = self.config
        self.hold()
        self._call("moveJ home", self._ctl.moveJ, list(cfg.home_q_rad), cfg.home_speed_rad_s, 1.0)
        self.set_gripper(0.0)

    # --- faults -------------------------------------------------------------------------------
    def fault(self) -> str:
        if self._rcv is None:
            return self._fault
        try:
            if self._rcv.isEmergencyStopped():
                return "ur emergency stop: release it on the pendant, then call recover"
            if self._rcv.isProtectiveStopped():
                return "ur protective stop (a collision or a safety limit); call recover to unlock it"
            if not self._ctl.isConnected():
                return "ur RTDE control connection lost"
        except Exception as err:
            return f"ur state query failed: {err}"
        return self._fault

    def recover(self) -> None:
        cfg = self.config
        if self._rcv is not None and self._rcv.isEmergencyStopped():
            raise AdapterError(
                "the UR is emergency-stopped: release the e-stop on the pendant and power the arm on first"
            )
        if self._rcv is not None and self._rcv.isProtectiveStopped():
            dashboard_client = require_sdk("dashboard_client", "ur_rtde", self.name)
            dashboard = dashboard_client.DashboardClient(cfg.robot_ip)
            try:
                dashboard.connect()
                dashboard.closeSafetyPopup()
                dashboard.unlockProtectiveStop()
            except Exception as err:
                raise AdapterError(
                    f"could not unlock the protective stop through the dashboard server: {err}"
                ) from None
            finally:
                dashboard.disconnect()
        self._fault = ""
        self._call("reuploadScript", self._ctl.reuploadScript)
        self._fault = ""
