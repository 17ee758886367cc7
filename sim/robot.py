"""`MujocoRobot`: the simulated arm and gripper behind the `robot_rl.interfaces.Robot` interface."""

from __future__ import annotations

import mujoco
import numpy as np

from robot_rl.cell import task_spec
from robot_rl.interfaces import EECommand, Robot, RobotSpec, RobotState, WorkspaceBox
from robot_rl.safety import command_deltas, lead_limited_target
from robot_rl_sim import scene
from robot_rl_sim.controller import CartesianImpedanceController, ImpedanceConfig

# The arm's box: pick_cube's, the widest task box of the core's cell table (robot_rl.cell.TASKS), reachable
# with the tool pointing down (checked corner by corner in tests/test_contract_sim.py).
DEFAULT_WORKSPACE = task_spec("pick_cube").workspace
DEFAULT_IMPEDANCE = ImpedanceConfig()  # one shared default (a module-level value, not a call in the signature)


def quat_from_rotvec(rotvec_rad: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation vector."""
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, *_axis_angle(rotvec_rad))
    return quat


def _axis_angle(rotvec_rad: np.ndarray) -> tuple[np.ndarray, float]:
    angle = float(np.linalg.norm(rotvec_rad))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0]), 0.0
    return np.asarray(rotvec_rad, dtype=np.float64) / angle, angle


class MujocoRobot(Robot):
    """A Panda-class arm under Cartesian impedance control in a MuJoCo model built by `robot_rl_sim.scene`.

    `command` moves the tool target (clipped to the workspace box and kept within
    `max_target_lead_m` of the tool, so a blocked arm does not wind up); `advance` steps physics
    with the impedance law at 500 Hz, re-linearising once per control period.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        control_rate_hz: float = 10.0,
        workspace: WorkspaceBox = DEFAULT_WORKSPACE,
        max_step_m: float = 0.025,
        max_step_rad: float = 0.15,
        max_target_lead_m: float = 0.06,
        impedance: ImpedanceConfig = DEFAULT_IMPEDANCE,
    ):
        substeps = 1.0 / (control_rate_hz * model.opt.timestep) if control_rate_hz > 0 else 0.5
        if abs(substeps - round(substeps)) > 1e-6 or round(substeps) < 1:
            raise ValueError(
                f"control_rate_hz={control_rate_hz} must divide the physics rate {1 / model.opt.timestep:.0f} Hz "
                "into a whole number of substeps (e.g. 10, 20, 25, 50)"
            )
        self.model, self.data = model, data
        self.substeps_per_control = int(round(substeps))
        self.max_target_lead_m = max_target_lead_m
        self.controller = CartesianImpedanceController(model, data, impedance, ramp_substeps=self.substeps_per_control)
        self.spec = RobotSpec(
            name="mujoco_panda",
            joint_names=scene.ARM_JOINTS,
            control_rate_hz=float(control_rate_hz),
            workspace=workspace,
            max_step_m=max_step_m,
            max_step_rad=max_step_rad,
            gripper_max_width_m=2 * scene.FINGER_MAX_OPENING_M,
        )
        self._home_key = model.key("home").id
        self._q_sl = self.controller.q_slice
        self._dq_sl = self.controller.dq_slice
        self._finger_qpos = [model.jnt_qposadr[model.joint(j).id] for j in scene.FINGER_JOINTS]
        self._gripper_act = model.actuator("gripper").id
        self._site_id = model.site(scene.TCP_SITE).id
        self._hand_body_id = model.site_bodyid[self._site_id]
        self._jac_pos = np.zeros((3, model.nv))

    # --- Robot interface --------------------------------------------------------------------
    def read(self) -> RobotState:
        d = self.data
        mujoco.mj_jacSite(self.model, d, self._jac_pos, None, self._site_id)
        return RobotState(
            q_rad=d.qpos[self._q_sl].copy(),
            dq_rad_s=d.qvel[self._dq_sl].copy(),
            ee_pos_m=d.site_xpos[self._site_id].copy(),
            ee_quat_wxyz=d.xquat[self._hand_body_id].copy(),
            ee_linvel_m_s=self._jac_pos @ d.qvel,
            gripper_width_m=float(d.qpos[self._finger_qpos[0]] + d.qpos[self._finger_qpos[1]]),
            t_capture=float(d.time),
        )

    def command(self, cmd: EECommand) -> None:
        delta_pos, delta_rot = command_deltas(cmd)
        ctl = self.controller
        tool_pos, _ = ctl.tool_pose()
        target = lead_limited_target(ctl.target_pos_m, delta_pos, tool_pos, self.spec.workspace, self.max_target_lead_m)
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, quat_from_rotvec(delta_rot), ctl.target_quat_wxyz)
        ctl.set_target(target, quat)
        self.set_gripper(cmd.gripper)

    def hold(self) -> None:
        mujoco.mj_kinematics(self.model, self.data)
        pos, quat = self.controller.tool_pose()
        self.controller.set_target(pos, quat, ramp=False)  # where the tool is, also outside the box: never a jump

    def advance(self, dt_s: float) -> None:
        n_total = int(round(dt_s / self.model.opt.timestep))
        if n_total < 0:
            raise ValueError(f"advance needs dt_s >= 0, got {dt_s}")
        ctl = self.controller
        while n_total > 0:
            n = min(n_total, self.substeps_per_control)
            ctl.prepare()
            ctl.step(n)
            n_total -= n
        mujoco.mj_forward(self.model, self.data)  # kinematics of the final state for read() and rendering

    def go_home(self) -> None:
        """Simulated: the arm is placed at the `home` keyframe at rest with the gripper open (objects stay)."""
        d, key = self.data, self.model.key(self._home_key)
        d.qpos[self._q_sl] = key.qpos[self._q_sl]
        d.qvel[self._dq_sl] = 0.0
        for adr in self._finger_qpos:
            d.qpos[adr] = scene.FINGER_MAX_OPENING_M
        self.set_gripper(0.0)
        mujoco.mj_forward(self.model, d)
        self.hold()

    # --- sim extras -------------------------------------------------------------------------
    def set_gripper(self, closing: float) -> None:
        """Gripper target: 0 open, 1 closed (clipped to [0, 1])."""
        self.data.ctrl[self._gripper_act] = scene.FINGER_MAX_OPENING_M * (1.0 - min(max(float(closing), 0.0), 1.0))

    def move_to(self, pos_m: np.ndarray, quat_wxyz: np.ndarray | None = None, duration_s: float = 1.0) -> None:
        """Move the tool target to a pose (position clipped to the workspace) in control-period steps of at
        most `max_target_lead_m`, and let `duration_s` pass in all."""
        ctl = self.controller
        goal = self.spec.workspace.clip(np.asarray(pos_m, dtype=np.float64))
        quat = ctl.target_quat_wxyz.copy() if quat_wxyz is None else np.asarray(quat_wxyz, dtype=np.float64)
        period_s = 1.0 / self.spec.control_rate_hz
        n_periods = max(int(round(duration_s / period_s)), 1)
        for _ in range(n_periods):
            step = goal - ctl.target_pos_m
            step_norm = float(np.linalg.norm(step))
            if step_norm > self.max_target_lead_m:
                step *= self.max_target_lead_m / step_norm
            ctl.set_target(ctl.target_pos_m + step, quat)
            self.advance(period_s)
