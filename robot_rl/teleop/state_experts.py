"""Scripted experts that need only the task's ground-truth object state, for the operator node.

The simulator's own experts (`robot_rl_sim.experts`) read MuJoCo internals and so run only in the
sim's process; the operator node sees the sim through topics, so these act from `task/object_state`
alone (layouts in `robot_rl.cell.TASKS`). `act(object_state)` returns a normalised base-frame
action `[dx, dy, dz, (drx, dry, drz,) gripper]`.
"""

from __future__ import annotations

import math

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


def wrap_quarter_turn(angle_rad: float) -> float:
    """An angle folded into [-pi/4, pi/4): a square peg looks the same every quarter turn."""
    return (angle_rad + math.pi / 4) % (math.pi / 2) - math.pi / 4


def yaw_of(quat_wxyz: np.ndarray) -> float:
    """Rotation about the base z axis (rad) of a quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


class PegInsertPhases:
    """peg_insert's scripted phases, one implementation for both experts: turn and move the peg tip over the hole ->
    descend while re-centring the tip. `step` takes the tip relative to the rim's centre and the yaw still to turn,
    and returns the tool's move (goal minus tool, m), the yaw change (rad) and the gripper."""

    hover_m = 0.012  # tip height above the rim before descending
    descend_step_m = 0.01  # per-step descent while inserting
    stall_steps = 4  # bounded contact: inserting with the tip no 1 mm deeper in this many steps, lift and align again

    def __init__(self, bounded: bool = False):
        self.bounded = bounded  # the sim's `bounded` contact profile (a blocked push stalls instead of slipping)
        self.reset()

    def reset(self) -> None:
        self.phase = "align"
        self._depths: list[float] = []

    def step(self, tip_minus_rim_m: np.ndarray, dyaw_rad: float) -> tuple[np.ndarray, float, float]:
        xy_err = -np.asarray(tip_minus_rim_m[:2], dtype=np.float64)
        above_m = float(tip_minus_rim_m[2])  # the tip's height above the rim
        to_hover = np.array([xy_err[0], xy_err[1], self.hover_m - above_m])
        if self.phase == "align":
            above_hover_m = above_m - self.hover_m
            if np.linalg.norm(xy_err) < 0.0015 and above_hover_m < 0.006 and abs(dyaw_rad) < 0.02:
                self.phase = "insert"
                # Aligned below the hover band: a tip already on its way into the hole (the policy got it
                # there and the operator took over) is pushed on down at once, never pulled back out first.
                if above_hover_m > -0.006:
                    return to_hover, dyaw_rad, 1.0
            else:
                return to_hover, dyaw_rad, 1.0
        # insert: keep the tip centred and go down; jammed under a bounded push (robot_rl_sim.contact), align again
        self._depths.append(-above_m)
        jammed = (
            self.bounded
            and len(self._depths) > self.stall_steps
            and self._depths[-1] - self._depths[-1 - self.stall_steps] < 0.001
        )
        if above_m > 0.02 or jammed:
            self.phase = "align"
            self._depths = []
            return to_hover, dyaw_rad, 1.0
        return np.array([xy_err[0], xy_err[1], -self.descend_step_m]), dyaw_rad, 1.0


class PegInsertStateExpert:
    """peg_insert's phases (PegInsertPhases) from the object state alone: the peg's orientation, the hole's yaw and
    the tip relative to the rim (`tip_to_hole`); moves relative to the measured tool, as pick_cube's does."""

    def __init__(self, use_rotation: bool = False, bounded: bool = False):
        self.spec, self.use_rotation = task_spec("peg_insert"), use_rotation
        self.phases = PegInsertPhases(bounded)

    def reset(self) -> None:
        self.phases.reset()

    def act(self, object_state: np.ndarray) -> np.ndarray:
        s = np.asarray(
            object_state, dtype=np.float64
        )  # peg_pos 3, peg_quat 4, hole_pos 3, hole_yaw cos/sin 2, tip_to_hole 3
        hole_yaw = math.atan2(s[11], s[10])
        dyaw = wrap_quarter_turn(hole_yaw - yaw_of(s[3:7])) if self.use_rotation else 0.0
        move, dyaw, gripper = self.phases.step(s[12:15], dyaw)
        motion = np.clip(move / self.spec.max_step_m, -1.0, 1.0)
        parts = [motion]
        if self.use_rotation:
            parts.append(np.array([0.0, 0.0, np.clip(dyaw / self.spec.max_step_rad, -1.0, 1.0)]))
        return np.concatenate([*parts, [gripper]]).astype(np.float32)


STATE_EXPERTS = {"pick_cube": PickCubeStateExpert, "peg_insert": PegInsertStateExpert}


def make_state_expert(task: str, use_rotation: bool = False):
    try:
        return STATE_EXPERTS[task](use_rotation)
    except KeyError:
        raise ValueError(
            f"no ground-truth-state expert for task {task!r}; there is one for {sorted(STATE_EXPERTS)}"
        ) from None
