"""Contract checks every Robot and Camera implementation must pass (sim now, hardware adapters later).

Each check takes a zero-argument factory returning a ready implementation (already homed, at
rest, tool away from the workspace walls) and raises AssertionError with the numbers that were
wrong. Hardware runs them with the arm in a cleared cell; `tests/test_contract_sim.py` runs them
against the MuJoCo cell.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robot_rl.interfaces import Camera, EECommand, Robot, RobotState


def _steps(robot: Robot, n: int, cmd: EECommand | None = None) -> RobotState:
    period_s = 1.0 / robot.spec.control_rate_hz
    for _ in range(n):
        if cmd is not None:
            robot.command(cmd)
        robot.advance(period_s)
    return robot.read()


def check_robot_state(robot: Robot) -> None:
    """A reading has the documented shapes, dtypes, units and a unit quaternion."""
    s = robot.read()
    n = len(robot.spec.joint_names)
    assert s.q_rad.shape == (n,) and s.dq_rad_s.shape == (n,), (s.q_rad.shape, s.dq_rad_s.shape)
    assert s.ee_pos_m.shape == (3,) and s.ee_quat_wxyz.shape == (4,) and s.ee_linvel_m_s.shape == (3,)
    for name in ("q_rad", "dq_rad_s", "ee_pos_m", "ee_quat_wxyz", "ee_linvel_m_s"):
        value = getattr(s, name)
        assert np.issubdtype(value.dtype, np.floating) and np.all(np.isfinite(value)), (name, value)
    assert abs(float(np.linalg.norm(s.ee_quat_wxyz)) - 1.0) < 1e-6, s.ee_quat_wxyz
    assert np.all(np.abs(s.q_rad) < 2 * np.pi), f"joint angles must be radians, got {s.q_rad}"
    assert 0.0 <= s.gripper_width_m <= robot.spec.gripper_max_width_m + 1e-3, s.gripper_width_m
    assert robot.spec.workspace.contains(s.ee_pos_m, tol_m=0.01), f"tool {s.ee_pos_m} starts outside the workspace"
    assert isinstance(s.t_capture, float), type(s.t_capture)


def check_command_moves_tool(robot: Robot, axis: int = 0, n_commands: int = 3) -> None:
    """`n_commands` steps of +max_step_m along `axis` move the tool by about that much (within 25 %,
    after a few settling periods), with < 5 mm drift on the other axes, and time advances."""
    start = robot.read()
    delta = np.zeros(3)
    delta[axis] = robot.spec.max_step_m
    _steps(robot, n_commands, EECommand(delta_pos_m=delta))
    end = _steps(robot, 5)
    moved = end.ee_pos_m - start.ee_pos_m
    want = n_commands * robot.spec.max_step_m
    assert abs(moved[axis] - want) < 0.25 * want, f"commanded {want:.4f} m along axis {axis}, moved {moved}"
    others = np.delete(moved, axis)
    assert np.all(np.abs(others) < 0.005), f"drift on the other axes {others} m"
    assert end.t_capture > start.t_capture, (start.t_capture, end.t_capture)


def check_hold_stops_motion(robot: Robot) -> None:
    """After a fast move, `hold` stops the tool within two control periods and it stays within 3 mm."""
    delta = np.array([0.0, robot.spec.max_step_m, 0.0])
    _steps(robot, 2, EECommand(delta_pos_m=delta))
    robot.hold()
    settled = _steps(robot, 2)
    later = _steps(robot, 5)
    assert np.linalg.norm(later.ee_pos_m - settled.ee_pos_m) < 0.003, (settled.ee_pos_m, later.ee_pos_m)
    assert np.linalg.norm(later.ee_linvel_m_s) < 0.01, later.ee_linvel_m_s


def check_workspace_clip(robot: Robot) -> None:
    """Commands pushing out of the box on every axis leave the tool inside it (5 mm tolerance)."""
    box = robot.spec.workspace
    for direction in (np.array([1.0, 1.0, 1.0]), np.array([-1.0, -1.0, 1.0])):
        size = np.subtract(box.high_m, box.low_m)
        n = int(np.ceil(size.max() / robot.spec.max_step_m)) + 3
        state = _steps(robot, n, EECommand(delta_pos_m=direction * robot.spec.max_step_m))
        assert box.contains(state.ee_pos_m, tol_m=0.005), f"tool {state.ee_pos_m} left {box}"
        reached = np.where(direction > 0, box.high_m, box.low_m)
        assert np.all(np.abs(state.ee_pos_m - reached) < 0.02), (
            f"tool {state.ee_pos_m} did not reach the wall {reached}"
        )


def check_gripper_closes_and_opens(robot: Robot) -> None:
    """gripper=1 closes the (empty) fingers below 5 mm; gripper=0 opens them beyond 90 % of the max width."""
    zero = np.zeros(3)
    closed = _steps(robot, 5, EECommand(delta_pos_m=zero, gripper=1.0))
    assert closed.gripper_width_m < 0.005, closed.gripper_width_m
    opened = _steps(robot, 5, EECommand(delta_pos_m=zero, gripper=0.0))
    assert opened.gripper_width_m > 0.9 * robot.spec.gripper_max_width_m, opened.gripper_width_m


def check_robot_contract(make_robot: Callable[[], Robot]) -> None:
    """All robot checks, each on a fresh robot."""
    for check in (
        check_robot_state,
        check_command_moves_tool,
        lambda r: check_command_moves_tool(r, axis=2),
        check_hold_stops_motion,
        check_workspace_clip,
        check_gripper_closes_and_opens,
    ):
        robot = make_robot()
        try:
            check(robot)
        finally:
            robot.close()


def check_camera_contract(make_camera: Callable[[], Camera], advance: Callable[[float], None]) -> None:
    """Frames have the spec's shape, are RGB uint8 with content, and later frames have later `t_capture`.

    `advance(dt_s)` lets time pass (a sleep on hardware, a physics step in sim).
    """
    camera = make_camera()
    try:
        spec = camera.spec
        K = np.asarray(spec.K, dtype=np.float64).reshape(3, 3)
        assert K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1.0, K
        assert 0 < K[0, 2] < spec.width and 0 < K[1, 2] < spec.height, K
        first = camera.read()
        assert first.image.shape == (spec.height, spec.width, 3), (first.image.shape, spec)
        assert first.image.dtype == np.uint8, first.image.dtype
        assert first.image.std() > 1.0, "the frame is blank"
        advance(1.0 / spec.rate_hz)
        second = camera.read()
        assert second.t_capture > first.t_capture, (first.t_capture, second.t_capture)
        assert second.image is not first.image and not np.shares_memory(second.image, first.image)
    finally:
        camera.close()
