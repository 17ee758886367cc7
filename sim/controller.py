"""Cartesian impedance (operational-space) control of the arm at physics rate.

Once per control period `prepare()` computes the tool Jacobian J (6x7), the joint-space inertia
M (7x7), the task-space inertia Lambda = (J M^-1 J^T)^-1 and the dynamically consistent
null-space projector N, and folds them with the gains into one matrix W (7x20) so that every
physics substep costs a handful of small numpy operations:

    tau = J^T Lambda (Kp e - Kd J dq) + N (kq (q_home - q) - dq_null dq)
        = W @ [e_pos (3), dq (7), q (7)] + c

with e = (e_pos, e_rot) in the base frame: e_pos = target position - tool position, exact every
substep; e_rot = rotation vector from the tool to the target orientation, linearised once per
period as e_rot(q) = e_rot(q0) - J_rot (q - q0) and so folded into W and c (a period turns the
tool by at most max_step_rad, so the neglected second-order term is ~0.01 rad and is corrected
at the next period). Gravity of the arm is compensated by the bodies' `gravcomp`, so the law
needs no bias term; Coriolis forces are neglected (slow arm).

Bounded contact (`ImpedanceConfig.ramp` and `max_error_m`, off by default; robot_rl_sim.contact's `bounded` profile):
the position reference ramps from where it is to each new target over one control period with its velocity fed
forward (damping is then relative to the reference's motion, so the tool tracks a full step without lag), it
advances only while the tool is within `max_error_m` of it, and the spring's error is saturated there. A blocked
tool is then pushed with at most Lambda Kp max_error_m (~39 N down at 8 mm, where the law above pushes with
Kp x the target's lead, up to ~300 N at 6 cm), like the error-clipping Cartesian impedance controllers of real
arms (SERL's Franka controller: 2000 N/m, error clipped to 1 cm). The reference is never dragged by the tool: a
reference moved along with a lagging or overshooting tool cancels the damping and the tool overshoots.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robot_rl_sim import scene


@dataclass(frozen=True)
class ImpedanceConfig:
    pos_natural_freq_hz: float = 4.0  # closed-loop bandwidth of the translation (per unit task inertia)
    rot_natural_freq_hz: float = 4.0  # closed-loop bandwidth of the rotation
    damping_ratio: float = 1.0  # 1 = critically damped tool motion
    null_stiffness_nm_rad: float = 10.0  # pull of the redundant joint motion toward the home posture
    null_damping_nm_s_rad: float = 2.0  # damping of the redundant joint motion
    inverse_damping: float = 1e-4  # Tikhonov term when inverting J M^-1 J^T near singularities
    ramp: bool = False  # the position reference ramps to each new target over a control period, velocity fed forward
    max_error_m: float | None = None  # the reference advances only this close to the tool, the spring's error is
    # saturated here: a blocked tool is pushed with at most Lambda Kp x this (None: the law without a bound)

    def __post_init__(self) -> None:
        if self.max_error_m is not None and not self.max_error_m > 0:
            raise ValueError(f"max_error_m must be > 0 (or None: unbounded), got {self.max_error_m}")

    @property
    def bounded(self) -> bool:
        return self.ramp or self.max_error_m is not None


class CartesianImpedanceController:
    """Drives the arm's torque motors so the tool point follows a target pose."""

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        cfg: ImpedanceConfig = ImpedanceConfig(),
        ramp_substeps: int = 50,
    ):
        self.model, self.data, self.cfg = model, data, cfg
        self.ramp_substeps = ramp_substeps if cfg.ramp else 0  # physics steps a new target's ramp takes
        # Names resolved to ids once.
        self._site_id = model.site(scene.TCP_SITE).id
        self._hand_body_id = model.site_bodyid[self._site_id]  # the tcp site has the hand's orientation
        joint_ids = [model.joint(j).id for j in scene.ARM_JOINTS]
        self._qpos_adr = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self._dof_adr = np.array([model.jnt_dofadr[j] for j in joint_ids])
        if not (np.all(np.diff(self._qpos_adr) == 1) and np.all(np.diff(self._dof_adr) == 1)):
            raise ValueError("the arm joints must be consecutive in qpos/qvel (they are the first bodies of the scene)")
        self.q_slice = slice(int(self._qpos_adr[0]), int(self._qpos_adr[0]) + 7)
        self.dq_slice = slice(int(self._dof_adr[0]), int(self._dof_adr[0]) + 7)
        self._act_ids = np.array([model.actuator(j).id for j in scene.ARM_JOINTS])
        self._act_sl = slice(int(self._act_ids[0]), int(self._act_ids[0]) + 7)
        self.q_home_rad = np.array(scene.HOME_Q_RAD)

        w_pos = 2 * np.pi * cfg.pos_natural_freq_hz
        w_rot = 2 * np.pi * cfg.rot_natural_freq_hz
        self._kp = np.array([w_pos**2] * 3 + [w_rot**2] * 3)  # (6,) 1/s^2
        self._kd = 2 * cfg.damping_ratio * np.array([w_pos] * 3 + [w_rot] * 3)  # (6,) 1/s

        # Target pose of the tool in the base frame.
        self.target_pos_m = np.zeros(3)
        self.target_quat_wxyz = np.array([1.0, 0.0, 0.0, 0.0])
        self.ref_pos_m = np.zeros(3)  # bounded contact: the position reference ramping towards the target
        self._ref_step = np.zeros(3)  # per physics step while ramping
        self._ref_left = 0  # physics steps of the ramp left

        # Work buffers (allocated once).
        self._jac = np.zeros((6, model.nv))
        self._mass = np.zeros((model.nv, model.nv))
        self._W = np.zeros((7, 17))
        self._c = np.zeros(7)
        self._u = np.zeros(17)  # [e_pos (3), dq (7), q (7)]
        self._quat_conj = np.zeros(4)
        self._quat_err = np.zeros(4)
        self._rot_err = np.zeros(3)
        self._Jp = np.zeros((3, 7))  # bounded contact: the translational Jacobian,
        self._Ap = np.zeros((7, 3))  # J^T Lambda[:, :3] (translational acceleration -> joint torque),
        self._W_rest = np.zeros((7, 14))  # and the rotation and null-space terms on [dq (7), q (7)]

    # --- target -----------------------------------------------------------------------------
    def tool_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Current tool position (3,) and orientation quaternion (4,) from the last kinematics pass."""
        return self.data.site_xpos[self._site_id].copy(), self.data.xquat[self._hand_body_id].copy()

    def set_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray, ramp: bool = True) -> None:
        """A new target pose. With the config's `ramp` (and `ramp` here) the position reference ramps there from
        where it is over one control period; else it is there at once (a hold: where the tool is)."""
        self.target_pos_m[:] = pos_m
        self.target_quat_wxyz[:] = quat_wxyz / np.linalg.norm(quat_wxyz)
        if ramp and self.ramp_substeps > 0:
            self._ref_step[:] = (self.target_pos_m - self.ref_pos_m) / self.ramp_substeps
            self._ref_left = self.ramp_substeps
        else:
            self.ref_pos_m[:] = self.target_pos_m
            self._ref_left = 0

    # --- control ----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Linear algebra of one control period: J, M, Lambda, N folded into W and c."""
        m, d = self.model, self.data
        jac = self._jac
        mujoco.mj_jacSite(m, d, jac[:3], jac[3:], self._site_id)
        mujoco.mj_fullM(m, d, self._mass)
        J = jac[:, self.dq_slice]  # (6, 7)
        M = self._mass[self.dq_slice, self.dq_slice]  # (7, 7), includes armature
        M_inv = np.linalg.inv(M)
        lam = np.linalg.inv(J @ M_inv @ J.T + self.cfg.inverse_damping * np.eye(6))  # (6, 6)
        A = J.T @ lam  # (7, 6): task force -> joint torque
        J_bar = M_inv @ A  # (7, 6): dynamically consistent generalised inverse
        N = np.eye(7) - J.T @ J_bar.T  # (7, 7) null-space projector for torques
        # Rotation error now, and its linearisation in q (see the module docstring).
        mujoco.mju_negQuat(self._quat_conj, d.xquat[self._hand_body_id])
        mujoco.mju_mulQuat(self._quat_err, self.target_quat_wxyz, self._quat_conj)
        mujoco.mju_quat2Vel(self._rot_err, self._quat_err, 1.0)  # the short way round
        q0 = d.qpos[self.q_slice]
        gain_rot = A[:, 3:6] * self._kp[3:6]  # (7, 3)
        W = self._W
        W[:, 0:3] = A[:, 0:3] * self._kp[0:3]
        W[:, 3:10] = -(A * self._kd) @ J - N * self.cfg.null_damping_nm_s_rad
        W[:, 10:17] = -N * self.cfg.null_stiffness_nm_rad - gain_rot @ J[3:6]
        self._c[:] = N @ self.q_home_rad * self.cfg.null_stiffness_nm_rad + gain_rot @ (self._rot_err + J[3:6] @ q0)
        if self.cfg.bounded:  # the translation apart (it is evaluated with its bound every physics step)
            self._Jp[:] = J[:3]
            self._Ap[:] = A[:, :3]
            self._W_rest[:, 0:7] = -(A[:, 3:6] * self._kd[3:6]) @ J[3:6] - N * self.cfg.null_damping_nm_s_rad
            self._W_rest[:, 7:14] = W[:, 10:17]

    def step(self, n_substeps: int) -> None:
        """Run `n_substeps` physics steps with the feedback law evaluated before each (call prepare() first)."""
        if self.cfg.bounded:
            return self._step_bounded(n_substeps)
        m, d, u = self.model, self.data, self._u
        site_xpos, target_pos = d.site_xpos[self._site_id], self.target_pos_m
        W, c, q_sl, dq_sl, act_sl = self._W, self._c, self.q_slice, self.dq_slice, self._act_sl
        ctrl, qpos, qvel = d.ctrl, d.qpos, d.qvel
        for _ in range(n_substeps):
            np.subtract(target_pos, site_xpos, out=u[0:3])
            u[3:10] = qvel[dq_sl]
            u[10:17] = qpos[q_sl]
            ctrl[act_sl] = W @ u + c  # motors clamp to the torque limits (ctrlrange)
            mujoco.mj_step(m, d)

    def _step_bounded(self, n_substeps: int) -> None:
        """`step` with the translation's reference ramped and its error bounded (see the module docstring)."""
        m, d, u = self.model, self.data, self._u[:14]
        site_xpos, ref, ref_step = d.site_xpos[self._site_id], self.ref_pos_m, self._ref_step
        W, c, q_sl, dq_sl, act_sl = self._W_rest, self._c, self.q_slice, self.dq_slice, self._act_sl
        Jp, Ap, kp, kd = self._Jp, self._Ap, self._kp[0], self._kd[0]
        e_max, ramp_vel = self.cfg.max_error_m, ref_step / m.opt.timestep
        ctrl, qpos, qvel = d.ctrl, d.qpos, d.qvel
        for _ in range(n_substeps):
            dq = qvel[dq_sl]
            moved = False
            if self._ref_left > 0:  # the ramp advances while the tool keeps within e_max of the reference
                ahead = ref + ref_step - site_xpos
                if e_max is None or float(ahead @ ahead) <= e_max * e_max:
                    ref += ref_step
                    self._ref_left -= 1
                    moved = True
            err = ref - site_xpos
            if e_max is not None:
                norm = float(np.sqrt(err @ err))
                if norm > e_max:  # pushed away from the reference: the spring saturates
                    err *= e_max / norm
            acc = kp * err - kd * (Jp @ dq)  # (3,) the translation's commanded acceleration
            if moved:
                acc += kd * ramp_vel  # damping relative to the reference's velocity
            u[0:7] = dq
            u[7:14] = qpos[q_sl]
            ctrl[act_sl] = Ap @ acc + W @ u + c  # motors clamp to the torque limits (ctrlrange)
            mujoco.mj_step(m, d)
