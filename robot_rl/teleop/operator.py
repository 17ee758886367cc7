"""A scripted operator: watches the task through ground truth and takes over when the policy strays.

It acts like a person with a teleop device -- its output is a `TeleopCommand` that goes through the
same arbiter (in process) or the same `teleop/command` topic (`robot-rl-operator-node`) -- so the
intervention path is exercised end to end without anyone at a keyboard.

    op = ScriptedOperator(OperatorConfig(), use_rotation=False)
    op.reset()                                              # every episode
    cmd = op.step(distance_to_done_m("pick_cube", object_state), expert_action)

Straying: the task's distance to done (`distance_to_done_m`: how far the task is from done, in
metres) did not shrink by `min_progress_m` over the last `patience_steps` steps, or grew more than
`away_m` above its best. Then the operator drives with the expert's action for `takeover_steps`
steps and releases, watching again from scratch. Budget per episode: at most `max_interventions`
take-overs and at most `max_fraction` of `max_episode_steps` driven; a spent budget releases at once.

Lost episodes (`end_lost`): when the caller says the episode can no longer succeed (`lost`: a peg pushed into the
hand, which neither the policy nor an operator can finish without a new grasp), the operator does what a person
watching does: it presses `failure` (the episode ends there, terminated with reward 0) instead of taking over for
the rest of its budget. Off, it keeps taking over a lost episode as it would any other.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop.arbiter import rotation_matrix


@dataclass(frozen=True)
class OperatorConfig:
    """When the scripted operator takes over, for how long, and its budget."""

    patience_steps: int = 10  # steps without progress before taking over
    min_progress_m: float = 0.01  # the progress distance must shrink this much over patience_steps
    away_m: float = 0.05  # taking over at once when the distance grew this far above its best
    takeover_steps: int = 15  # steps driven per intervention
    max_interventions: int = 3  # budget: take-overs per episode
    max_fraction: float = 0.3  # budget: fraction of max_episode_steps the operator may drive per episode
    max_episode_steps: int = 100  # episode length the fraction refers to
    end_lost: bool = True  # a lost episode (step's `lost`) gets a `failure` verdict instead of take-overs

    def __post_init__(self) -> None:
        if self.patience_steps < 1 or self.takeover_steps < 1 or self.max_episode_steps < 1:
            raise ValueError(
                f"patience_steps, takeover_steps and max_episode_steps must be >= 1, got "
                f"{self.patience_steps}, {self.takeover_steps}, {self.max_episode_steps}"
            )
        if not (0.0 <= self.max_fraction <= 1.0) or self.max_interventions < 0:
            raise ValueError(
                f"need max_fraction in [0, 1] and max_interventions >= 0, got "
                f"{self.max_fraction}, {self.max_interventions}"
            )

    @property
    def max_steps_driven(self) -> int:
        return int(self.max_fraction * self.max_episode_steps)


def distance_to_done_m(
    task: str, object_state: np.ndarray, lift_target_z_m: float = 0.075, insert_depth_m: float = 0.025
) -> float:
    """How far the task is from done (m), from its ground-truth object state (layouts in robot_rl.cell).

    pick_cube: |tcp - cube| + how far the cube centre is below `lift_target_z_m` (cube half 2 cm + 5 cm lift);
    peg_insert: |tip - the point `insert_depth_m` below the hole's rim| (the task's success depth), so it keeps
    shrinking while the peg goes in. (Measured to the rim, as it once was, it grew again below the rim: a peg on
    its way in looked like a policy going nowhere, and the operator took over 20-30 % of the steps of a policy
    that succeeded in 95 % of its episodes.)
    """
    s = np.asarray(object_state, dtype=np.float64)
    if task == "pick_cube":  # cube_pos 3, cube_quat 4, cube_to_tcp 3
        return float(np.linalg.norm(s[7:10]) + max(0.0, lift_target_z_m - s[2]))
    if task == "peg_insert":  # peg_pos 3, peg_quat 4, hole_pos 3, hole_yaw_cos_sin 2, tip_to_hole (tip - rim) 3
        tip_to_goal = s[12:15] + np.array([0.0, 0.0, insert_depth_m])
        return float(np.linalg.norm(tip_to_goal))
    raise ValueError(f"no progress distance for task {task!r}; choose pick_cube or peg_insert")


LOST_SLIP_M = 0.005  # a held peg pushed this far into the hand cannot be finished (robot_rl.training.failures)


def held_object_pos(task: str, object_state: np.ndarray) -> np.ndarray | None:
    """(3,) where the object the task starts with in the hand is (peg_insert: the peg's centre), from its
    ground-truth object state; None for a task that starts with nothing in the hand (pick_cube)."""
    if task == "peg_insert":
        return np.asarray(object_state, dtype=np.float64)[0:3]
    return None


class GraspSlip:
    """How far a held object has been pushed back into the hand since the episode began: the object's depth along
    the tool's z axis (out of the hand) below the tool point, against its depth at the first reading after `reset`.

    The sim's own measure (the task's `grasp_slip_m`) from what a ROS node sees: the `ee_pose` topic (tool point and
    orientation) and the object's position."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._depth0: float | None = None

    def __call__(self, tool_pos_m: np.ndarray, tool_quat_wxyz: np.ndarray, object_pos_m: np.ndarray) -> float:
        axis = rotation_matrix(np.asarray(tool_quat_wxyz, dtype=np.float64))[:, 2]
        depth = float((np.asarray(object_pos_m, np.float64) - np.asarray(tool_pos_m, np.float64)) @ axis)
        if self._depth0 is None:
            self._depth0 = depth
        return self._depth0 - depth


def command_from_action(
    action: np.ndarray, use_rotation: bool, t_s: float = 0.0, engaged: bool = True
) -> TeleopCommand:
    """A normalised base-frame action [dx, dy, dz, (drx, dry, drz,) gripper] as the teleop command that yields it."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    twist = np.zeros(6)
    twist[:3] = a[:3]
    if use_rotation:
        twist[3:6] = a[3:6]
    return TeleopCommand(np.clip(twist, -1.0, 1.0), float((np.clip(a[-1], -1, 1) + 1.0) / 2.0), engaged, t_capture=t_s)


class ScriptedOperator:
    """Per-episode watcher. `step` once per control step, in order, with the distance and the expert's action."""

    def __init__(self, cfg: OperatorConfig, use_rotation: bool):
        self.cfg, self.use_rotation = cfg, use_rotation
        self.reset()

    def reset(self) -> None:
        self.interventions = 0  # take-overs this episode
        self.steps_driven = 0  # steps this episode the operator drove
        self._remaining = 0  # steps left in the current take-over
        self._history: deque[float] = deque(maxlen=self.cfg.patience_steps + 1)
        self._best = float("inf")
        self._engaged = False
        self.ended = False  # it gave this episode a failure verdict

    @property
    def driving(self) -> bool:
        return self._remaining > 0

    def budget_left(self) -> bool:
        return self.interventions < self.cfg.max_interventions and self.steps_driven < self.cfg.max_steps_driven

    def strays(self, distance_m: float) -> bool:
        """Record the distance; True when the policy made too little progress or moved away."""
        self._history.append(distance_m)
        self._best = min(self._best, distance_m)
        if distance_m - self._best > self.cfg.away_m:
            return True
        full = len(self._history) == self._history.maxlen
        return full and self._history[0] - distance_m < self.cfg.min_progress_m

    def step(self, distance_m: float, expert_action: np.ndarray, t_s: float = 0.0, lost: bool = False) -> TeleopCommand:
        """The operator's command for this step (engaged while driving), with take_over / release events; with
        `end_lost`, a `lost` episode's first such step carries `failure` (and `release` if it was driving)."""
        was = self._engaged
        if lost and self.cfg.end_lost:
            self._remaining, self._engaged = 0, False
            cmd = TeleopCommand(np.zeros(6), None, False, t_capture=t_s)
            cmd.events = (("release",) if was else ()) + (() if self.ended else ("failure",))
            self.ended = True
            return cmd
        if self.driving and self.steps_driven >= self.cfg.max_steps_driven:
            self._remaining = 0  # budget spent mid-intervention
        if not self.driving and self.strays(distance_m) and self.budget_left():
            self.interventions += 1
            self._remaining = self.cfg.takeover_steps
        if self.driving:
            self._remaining -= 1
            self.steps_driven += 1
            if self._remaining == 0:  # watch afresh after giving back
                self._history.clear()
                self._best = float("inf")
            cmd = command_from_action(expert_action, self.use_rotation, t_s)
        else:
            cmd = TeleopCommand(np.zeros(6), None, False, t_capture=t_s)
        self._engaged = cmd.engaged
        if cmd.engaged != was:
            cmd.events = ("take_over",) if cmd.engaged else ("release",)
        return cmd
