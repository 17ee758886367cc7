"""Workspace-bounds teaching: record tool positions at the corners of the allowed space, fit a box.

Works against any `robot_rl.interfaces.Robot`: the person moves the arm (hand guiding, teleop)
and presses Enter to record where the tool point is. Typing `x y z` first drives the tool there in
small steps through `Robot.command` (handy in simulation and for scripted tests). The box is the
axis-aligned bounds of the recorded points, shrunk by a safety margin on every side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from robot_rl.interfaces import EECommand, Robot, WorkspaceBox
from robot_rl_calibration.board import CalibrationError

HELP = (
    "  Enter       record the tool position as the next point\n"
    "  x y z       drive the tool to (x, y, z) metres in the base frame, then Enter to record\n"
    "  done        finish (needs at least 2 points spanning every axis)\n"
    "  quit        abort without writing anything"
)


@dataclass(frozen=True)
class WorkspaceConfig:
    """How taught points become a box."""

    margin_m: float = 0.0  # shrink the box by this much on every side (a safety margin), metres
    min_extent_m: float = 0.02  # refuse a box thinner than this along any axis (after the margin), metres
    max_points: int = 8  # stop asking after this many points (8 = every corner of a box)
    drive_tolerance_m: float = 0.003  # `x y z` drives until the tool is this close
    drive_timeout_s: float = 20.0  # or until this much robot time has passed


def box_from_points(points_m: np.ndarray, cfg: WorkspaceConfig = WorkspaceConfig()) -> WorkspaceBox:
    pts = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 2:
        raise CalibrationError(f"{len(pts)} point(s) recorded; need at least 2 opposite corners of the workspace")
    low, high = pts.min(axis=0) + cfg.margin_m, pts.max(axis=0) - cfg.margin_m
    thin = [f"{axis} ({hi - lo:+.3f} m)" for axis, lo, hi in zip("xyz", low, high) if hi - lo < cfg.min_extent_m]
    if thin:
        raise CalibrationError(
            f"the taught box is thinner than min_extent_m={cfg.min_extent_m} m along {', '.join(thin)} "
            f"after a margin of {cfg.margin_m} m; record corners that differ along every axis or use a smaller margin"
        )
    return WorkspaceBox(low_m=tuple(low.tolist()), high_m=tuple(high.tolist()))


def drive_to(robot: Robot, goal_m: np.ndarray, cfg: WorkspaceConfig = WorkspaceConfig()) -> np.ndarray:
    """Step the tool toward `goal_m` with bounded commands; the position reached."""
    period_s = 1.0 / robot.spec.control_rate_hz
    for _ in range(max(int(cfg.drive_timeout_s / period_s), 1)):
        err = np.asarray(goal_m, dtype=np.float64) - robot.read().ee_pos_m
        dist = float(np.linalg.norm(err))
        if dist < cfg.drive_tolerance_m:
            break
        step = err * min(1.0, robot.spec.max_step_m / dist)
        robot.command(EECommand(delta_pos_m=step))
        robot.advance(period_s)
    robot.hold()
    return robot.read().ee_pos_m.copy()


def teach(
    robot: Robot,
    lines: Iterable[str],
    say: Callable[[str], None] = print,
    cfg: WorkspaceConfig = WorkspaceConfig(),
) -> tuple[WorkspaceBox, np.ndarray]:
    """Run the prompt loop over `lines` (stdin, or a script); the box and the recorded points."""
    points: list[np.ndarray] = []
    say("Workspace teaching: move the tool to each corner of the space it may use.\n" + HELP)
    it = iter(lines)
    while len(points) < cfg.max_points:
        say(f"point {len(points) + 1}/{cfg.max_points}: move the tool, then Enter (or x y z / done / quit)")
        try:
            line = next(it).strip()
        except StopIteration:
            break
        if line.lower() in ("quit", "q", "abort"):
            raise CalibrationError("workspace teaching aborted; nothing written")
        if line.lower() == "done":
            break
        if line:
            try:
                goal = np.array([float(v) for v in line.replace(",", " ").split()])
            except ValueError:
                goal = np.zeros(0)
            if goal.shape != (3,):
                say(f"  did not understand {line!r}; type three numbers x y z (metres), or:\n{HELP}")
                continue
            reached = drive_to(robot, goal, cfg)
            say(f"  tool at {np.round(reached, 4).tolist()} (asked {goal.tolist()}); Enter to record it")
            continue
        p = robot.read().ee_pos_m.copy()
        points.append(p)
        say(f"  recorded point {len(points)}: {np.round(p, 4).tolist()} m")
    pts = np.array(points).reshape(-1, 3)
    box = box_from_points(pts, cfg)
    say(
        f"workspace box: low {np.round(box.low_m, 4).tolist()} high {np.round(box.high_m, 4).tolist()} m "
        f"(margin {cfg.margin_m} m, from {len(pts)} points)"
    )
    return box, pts
