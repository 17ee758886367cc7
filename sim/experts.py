"""Scripted experts: ground-truth state machines that solve the tasks, for demos and tests.

`make_expert(env, noise=0.1)` returns an expert for the env's task; `expert.act(obs)` reads the
simulator's ground truth from `env.unwrapped` (the observation is accepted but not needed) and
returns a normalised action in the env's action space. `noise` adds Gaussian noise (std, in
normalised action units) to the motion part of every action for diverse demos.

Each task's phases are one implementation (`robot_rl.teleop.state_experts.PickCubePhases`, `PegInsertPhases`), shared
with the operator node's experts, which act from the `task/object_state` topic alone. This one steers from the controller's target
rather than the measured tool, as it always has, so recorded demos stay what they were.
"""

from __future__ import annotations

import abc

import gymnasium as gym
import numpy as np

from robot_rl.teleop.state_experts import PegInsertPhases, PickCubePhases, wrap_quarter_turn, yaw_of
from robot_rl_sim.tasks import PegInsert, PickCube, Task


class Expert(abc.ABC):
    def __init__(self, env: gym.Env, noise: float = 0.0, seed: int | None = None):
        self.env = env.unwrapped
        self.task = self.env.task
        self.robot = self.env.robot
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self.reset()

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the previous episode (call after env.reset)."""

    @abc.abstractmethod
    def _act(self) -> tuple[np.ndarray, float, float]:
        """Goal tool position (3,), goal yaw change (rad) and gripper in [-1, 1] for this step."""

    def act(self, obs=None) -> np.ndarray:
        goal_pos_m, dyaw_rad, gripper = self._act()
        spec = self.robot.spec
        # Deltas are relative to the controller's target (that is what a command moves).
        move = (goal_pos_m - self.robot.controller.target_pos_m) / spec.max_step_m
        motion = np.clip(move, -1.0, 1.0)
        if self.noise > 0:
            motion = np.clip(motion + self.rng.normal(0.0, self.noise * self.noise_scale(), 3), -1.0, 1.0)
        parts = [motion]
        if self.task.use_rotation:
            parts.append(np.array([0.0, 0.0, np.clip(dyaw_rad / spec.max_step_rad, -1.0, 1.0)]))
        parts.append(np.array([gripper]))
        return np.concatenate(parts).astype(np.float32)

    def noise_scale(self) -> float:
        """Fraction of `noise` used in the current phase."""
        return 1.0

    def tcp(self) -> np.ndarray:
        return self.robot.controller.tool_pose()[0]


class PickCubeExpert(Expert):
    """Above the cube -> down around it -> close -> lift (robot_rl.teleop.state_experts.PickCubePhases, read with the
    simulator's ground truth: whether the cube is in the gripper)."""

    def __init__(self, env: gym.Env, noise: float = 0.0, seed: int | None = None):
        self.phases = PickCubePhases(env.unwrapped.robot.spec.workspace.low_m[2])
        super().__init__(env, noise, seed)

    def reset(self) -> None:
        self.phases.reset()

    @property
    def phase(self) -> str:
        return self.phases.phase

    def _act(self) -> tuple[np.ndarray, float, float]:
        task: PickCube = self.task
        cube, tcp = task.cube_pos(), self.tcp()
        grasped = task.is_grasped()
        dropped = not grasped and cube[2] < task.cube_half_m + 0.01 and np.linalg.norm((cube - tcp)[:2]) > 0.015
        goal, gripper = self.phases.step(cube, tcp, holding=grasped, dropped=dropped)
        return goal, 0.0, gripper


class PegInsertExpert(Expert):
    """Turn and move the peg tip over the hole -> descend while re-centring the tip
    (robot_rl.teleop.state_experts.PegInsertPhases, read with the simulator's ground truth)."""

    def __init__(self, env: gym.Env, noise: float = 0.0, seed: int | None = None):
        self.phases = PegInsertPhases(bounded=env.unwrapped.robot.controller.cfg.bounded)
        super().__init__(env, noise, seed)

    def reset(self) -> None:
        self.phases.reset()

    @property
    def phase(self) -> str:
        return self.phases.phase

    def noise_scale(self) -> float:
        return 0.3 if self.phase == "insert" else 1.0  # jiggling a peg in a 0.75 mm gap tilts it in the grasp

    def _act(self) -> tuple[np.ndarray, float, float]:
        task: PegInsert = self.task
        peg_yaw = yaw_of(self.env.data.xquat[task._peg_body])
        dyaw = wrap_quarter_turn(task.hole_yaw_rad - peg_yaw) if task.use_rotation else 0.0
        move, dyaw, gripper = self.phases.step(task.tip_pos() - task.rim_pos(), dyaw)
        return self.tcp() + move, dyaw, gripper


EXPERTS: dict[str, type[Expert]] = {"pick_cube": PickCubeExpert, "peg_insert": PegInsertExpert}


def make_expert(env: gym.Env, noise: float = 0.0, seed: int | None = None) -> Expert:
    """The scripted expert of the env's task (`env` may be wrapped)."""
    task = getattr(env.unwrapped, "task", None)
    if not isinstance(task, Task):
        raise ValueError(f"make_expert needs a robot_rl_sim env (robot_rl_sim.env.make_task_env), got {env.unwrapped}")
    try:
        return EXPERTS[task.name](env, noise=noise, seed=seed)
    except KeyError:
        raise ValueError(f"no expert for task {task.name!r}; experts exist for {sorted(EXPERTS)}") from None
