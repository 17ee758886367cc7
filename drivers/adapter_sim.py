"""`SimArmAdapter`: the MuJoCo arm (robot_rl_sim) behind the `ArmAdapter` interface.

Two cells. Without `cell`: what the arm node's tests run, and a way to try the node without an arm, an
empty cell (arm, gripper, table, no task objects). With `cell` (a `RobotCellEnv`): the task cell of
`robot-rl-sim-node`, where `go_home` (the `reset` service) draws the task's next randomised episode start
from the cell's RNG (seeded at connect) and simulation time runs on across it. Either way physics advances
one control period per `tick`.
Pose targets go straight to the Cartesian impedance controller; velocities are integrated into the
target (as a speedL would). `inject_fault` stands in for a hardware reflex (a Franka collision reflex, a
UR protective stop) so the fault path can be exercised: the arm holds and refuses commands until `recover`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robot_rl.interfaces import RobotState, WorkspaceBox  # noqa: E402
from robot_rl.safety import clip_toward_box  # noqa: E402
from robot_rl_drivers.adapters import COMMAND_MODES, AdapterError, ArmAdapter  # noqa: E402
from robot_rl_drivers.arm_pose import quat_from_rotvec, quat_mul  # noqa: E402
from robot_rl_sim import scene  # noqa: E402
from robot_rl_sim.robot import DEFAULT_WORKSPACE, MujocoRobot  # noqa: E402
from robot_rl_sim.tasks import TOOL_DOWN_QUAT_WXYZ  # noqa: E402

if TYPE_CHECKING:
    from robot_rl_sim.env import RobotCellEnv


@dataclass(frozen=True)
class SimArmConfig:
    """Parameters of the simulated arm (ROS parameters `sim.<field>` of the arm node)."""

    command_mode: str = "pose"  # pose: absolute targets to the impedance controller; velocity: integrated twists
    home_pos_m: tuple[float, float, float] = (0.5, 0.0, 0.25)  # tool position after connect and `go_home`, tool down
    workspace_low_m: tuple[float, float, float] = DEFAULT_WORKSPACE.low_m  # the arm's own reachable box
    workspace_high_m: tuple[float, float, float] = DEFAULT_WORKSPACE.high_m


class SimArmAdapter(ArmAdapter):
    name = "sim"
    real_time = False
    config_class = SimArmConfig

    def __init__(
        self,
        config: SimArmConfig = SimArmConfig(),
        control_rate_hz: float = 50.0,
        cell: RobotCellEnv | None = None,
        seed: int | None = None,
    ):
        """`control_rate_hz`: the tick rate; it must divide the 500 Hz physics rate (10, 20, 25, 50, ...).
        `cell`: a task cell (built at `control_rate_hz`) to drive instead of the empty one; `seed` seeds its
        episode starts at connect (`home_pos_m` and the workspace fields are then unused: the task's start and box apply)."""
        if config.command_mode not in COMMAND_MODES:
            raise ValueError(f"sim.command_mode {config.command_mode!r}; choose one of {list(COMMAND_MODES)}")
        super().__init__(config, control_rate_hz)
        self.command_mode = config.command_mode
        self.finger_joints = scene.FINGER_JOINTS
        self.robot: MujocoRobot | None = None
        self._fault = ""
        self.cell, self.seed = cell, seed
        self.episode = -1  # task cell: episodes started since connect, minus one
        self.sent_commands = 0  # pose targets + velocities that reached the arm (tests read it)

    # --- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        if self.cell is not None:
            self.robot, self.spec = self.cell.robot, self.cell.robot.spec
            self._tcp_site = self.cell.model.site(scene.TCP_SITE).id
            self._start_episode(self.seed)
            return
        cfg = self.config
        model = scene.build_model("arm_sim")
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
        mujoco.mj_forward(model, data)  # kinematics and inertia of the home pose for the first control period
        workspace = WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m))
        self.robot = MujocoRobot(model, data, control_rate_hz=self.control_rate_hz, workspace=workspace)
        self.spec = self.robot.spec
        self._tcp_site = model.site(scene.TCP_SITE).id
        self.go_home()

    def disconnect(self) -> None:
        self.robot = None

    def _arm(self) -> MujocoRobot:
        if self.robot is None:
            raise AdapterError("the simulated arm is not connected; call connect() (lifecycle: configure) first")
        return self.robot

    # --- state --------------------------------------------------------------------------------
    def read(self) -> RobotState:
        return self._arm().read()

    def ee_angvel_rad_s(self) -> np.ndarray:
        robot = self._arm()
        vel6 = np.zeros(6)  # (angular, linear), base frame
        mujoco.mj_objectVelocity(robot.model, robot.data, mujoco.mjtObj.mjOBJ_SITE, self._tcp_site, vel6, 0)
        return vel6[:3].copy()

    # --- commands -----------------------------------------------------------------------------
    def _check_fault(self) -> None:
        if self._fault:
            raise AdapterError(f"{self._fault}; call recover first")

    def send_pose_target(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        if self.command_mode != "pose":
            return super().send_pose_target(pos_m, quat_wxyz)
        self._check_fault()
        self._arm().controller.set_target(np.asarray(pos_m, dtype=np.float64), np.asarray(quat_wxyz, dtype=np.float64))
        self.sent_commands += 1

    def send_velocity(self, linvel_m_s: np.ndarray, angvel_rad_s: np.ndarray) -> None:
        if self.command_mode != "velocity":
            return super().send_velocity(linvel_m_s, angvel_rad_s)
        self._check_fault()
        ctl, dt_s = self._arm().controller, 1.0 / self.control_rate_hz
        pos = clip_toward_box(ctl.target_pos_m + np.asarray(linvel_m_s) * dt_s, ctl.target_pos_m, self.spec.workspace)
        ctl.set_target(pos, quat_mul(quat_from_rotvec(np.asarray(angvel_rad_s) * dt_s), ctl.target_quat_wxyz))
        self.sent_commands += 1

    def set_gripper(self, closing: float) -> None:
        self._check_fault()
        self._arm().set_gripper(closing)

    def hold(self) -> None:
        self._arm().hold()

    def go_home(self) -> str | None:
        """Simulated: a 1 s move of the tool to `home_pos_m` (tool down) with the gripper opening, stepped at once;
        in a task cell, the task's next randomised episode start instead (what was done, as one line)."""
        self._check_fault()
        if self.cell is not None:
            return self._start_episode(None)
        robot = self._arm()
        robot.hold()  # the move starts from where the tool is
        robot.set_gripper(0.0)
        robot.move_to(np.array(self.config.home_pos_m), TOOL_DOWN_QUAT_WXYZ, duration_s=1.0)
        robot.hold()

    def _start_episode(self, seed: int | None) -> str:
        """The task cell's randomised reset (seeded when `seed` is given); sim time continues from where it was."""
        cell = self.cell
        t_before_s = float(cell.data.time)
        cell.reset(seed=seed)  # restarts data.time at 0 and settles the arm at its random start
        cell.data.time += t_before_s
        self.episode = 0 if seed is not None else self.episode + 1
        return f"reset {cell.task.name} episode {self.episode} at sim time {cell.data.time:.3f} s"

    def tick(self, dt_s: float) -> None:
        self._arm().advance(dt_s)

    # --- faults -------------------------------------------------------------------------------
    def fault(self) -> str:
        return self._fault

    def inject_fault(self, reason: str) -> None:
        """Simulation only: behave like an arm whose controller stopped (the arm holds until `recover`)."""
        self._fault = f"simulated arm fault: {reason}"
        self.hold()

    def recover(self) -> None:
        self._fault = ""
