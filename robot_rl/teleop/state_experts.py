"""Scripted experts that need only the task's ground-truth object state, for the operator node.

The simulator's own experts (`robot_rl_sim.experts`) read MuJoCo internals and so run only in the
sim's process; the operator node sees the sim through topics, so these act from `task/object_state`
alone (layouts in `robot_rl.cell.TASKS`). `act(object_state)` returns a normalised base-frame
action `[dx, dy, dz, (drx, dry, drz,) gripper]`.
"""

from __future__ import annotations

import numpy as np

from robot_rl.cell import task_spec


class PickCubePhases:
    """pick_cube's scripted phases, one implementation for both experts: above the cube -> down around it -> close
    -> lift. `step` takes where the cube and the tool are and returns the tool's goal and the gripper; the caller
    turns the goal into an action (the sim's expert relative to the controller's target, the operator node's
    relative to the measured tool)."""

    hover_m = 0.07  # tool height above the cube centre before descending
    lift_goal_m = 0.15  # tool height to lift to
    close_steps = 3  # steps the gripper closes before lifting

    def __init__(self, table_z_m: float):
        self.table_z_m = table_z_m  # the lowest tool height (the workspace floor)
        self.reset()

    def reset(self) -> None:
        self.phase, self._closing = "approach", 0

    def step(self, cube: np.ndarray, tcp: np.ndarray, holding: bool, dropped: bool) -> tuple[np.ndarray, float]:
        """(goal tool position (3,), gripper in [-1, 1]). `holding`: the cube is known to be in the gripper (the
        policy grasped it before a take-over: lift, never let go); `dropped`: lifting, the cube is back on the table."""
        grasp = np.array([cube[0], cube[1], max(cube[2] - 0.002, self.table_z_m)])
        if self.phase in ("approach", "descend") and holding:
            self.phase = "lift"
        if self.phase == "approach":
            goal = grasp + [0.0, 0.0, self.hover_m]
            if np.linalg.norm((goal - tcp)[:2]) < 0.008 and abs(goal[2] - tcp[2]) < 0.03:
                self.phase = "descend"
            return goal, -1.0
        if self.phase == "descend":
            if np.linalg.norm((grasp - tcp)[:2]) > 0.02:  # the cube moved away: start over
                self.phase = "approach"
            elif abs(grasp[2] - tcp[2]) < 0.006:
                self.phase = "close"
            return grasp, -1.0
        if self.phase == "close":
            self._closing += 1
            if self._closing >= self.close_steps:
                self.phase = "lift"
            return grasp, 1.0
        if dropped:
            self.reset()  # try again from above (this step still lifts, as the phase it was in)
        return np.array([tcp[0], tcp[1], self.lift_goal_m]), 1.0


class PickCubeStateExpert:
    """pick_cube's phases (PickCubePhases) from cube_pos and cube_to_tcp alone."""

    def __init__(self, use_rotation: bool = False):
        self.spec, self.use_rotation = task_spec("pick_cube"), use_rotation
        self.phases = PickCubePhases(self.spec.workspace.low_m[2])

    def reset(self) -> None:
        self.phases.reset()

    def act(self, object_state: np.ndarray) -> np.ndarray:
        s = np.asarray(object_state, dtype=np.float64)
        cube, tcp = s[0:3], s[0:3] + s[7:10]
        lifting = self.phases.phase == "lift"
        dropped = lifting and np.linalg.norm(s[7:10]) > 0.04 and cube[2] < 0.03
        goal, gripper = self.phases.step(cube, tcp, holding=False, dropped=dropped)
        motion = np.clip((goal - tcp) / self.spec.max_step_m, -1.0, 1.0)
        parts = [motion, np.zeros(3)] if self.use_rotation else [motion]
        return np.concatenate([*parts, [gripper]]).astype(np.float32)


STATE_EXPERTS = {"pick_cube": PickCubeStateExpert}


def make_state_expert(task: str, use_rotation: bool = False):
    try:
        return STATE_EXPERTS[task](use_rotation)
    except KeyError:
        raise ValueError(
            f"no ground-truth-state expert for task {task!r}; there is one for {sorted(STATE_EXPERTS)}"
        ) from None
