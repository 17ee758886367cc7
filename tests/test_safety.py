"""The safety filter and watchdog: nothing unsafe or non-finite ever leaves them."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.interfaces import EECommand, WorkspaceBox
from robot_rl.safety import CommandWatchdog, SafetyFilter, SafetyLimits

BOX = WorkspaceBox(low_m=(0.3, -0.2, 0.0), high_m=(0.7, 0.2, 0.4))
DT_S = 0.1


def _make_filter(**overrides) -> SafetyFilter:
    return SafetyFilter(SafetyLimits(workspace=BOX, **overrides))


def _cmd(dx=0.0, dy=0.0, dz=0.0, rot=(0.0, 0.0, 0.0), gripper=0.0) -> EECommand:
    return EECommand(np.array([dx, dy, dz]), np.array(rot, dtype=float), gripper)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_commands_are_rejected_and_become_a_hold(bad):
    f = _make_filter()
    for cmd in (_cmd(dx=bad), _cmd(rot=(0, bad, 0)), _cmd(gripper=bad)):
        out = f.filter(cmd, target_pos_m=np.array([0.5, 0, 0.2]), dt_s=DT_S, last_gripper=0.7)
        assert out.rejected
        assert np.all(out.command.delta_pos_m == 0) and np.all(out.command.delta_rotvec_rad == 0)
        assert out.command.gripper == pytest.approx(0.7)  # keep the grasp: dropping an object is not "safe"
        assert "non-finite" in out.reason


def test_wrong_shape_is_rejected_with_the_expected_shape():
    out = _make_filter().filter(EECommand(np.zeros(2)), np.array([0.5, 0, 0.2]), DT_S)
    assert out.rejected and "(3,)" in out.reason


def test_translation_is_limited_by_step_and_speed():
    f = _make_filter(max_step_m=0.03, max_speed_m_s=0.2, max_accel_m_s2=100.0)
    out = f.filter(_cmd(dx=0.5), np.array([0.5, 0, 0.2]), DT_S)
    assert np.linalg.norm(out.command.delta_pos_m) == pytest.approx(0.02)  # 0.2 m/s * 0.1 s < 0.03 m step
    assert out.command.delta_pos_m[0] > 0 and {"step", "speed"} <= set(out.clipped)


def test_acceleration_limit_ramps_up_a_sudden_command():
    f = _make_filter(max_step_m=0.05, max_speed_m_s=0.5, max_accel_m_s2=1.0)
    steps = [
        np.linalg.norm(f.filter(_cmd(dx=0.05), np.array([0.4, 0, 0.2]), DT_S).command.delta_pos_m) for _ in range(6)
    ]
    assert steps[0] == pytest.approx(0.01)  # dv <= 1 m/s^2 * 0.1 s = 0.1 m/s -> 0.01 m per step
    assert steps[1] == pytest.approx(0.02)
    assert steps[-1] == pytest.approx(0.05)


def test_target_never_leaves_the_workspace():
    f = _make_filter(max_accel_m_s2=1000.0)
    rng = np.random.default_rng(0)
    target = np.array([0.5, 0.0, 0.2])
    for _ in range(500):
        out = f.filter(_cmd(*rng.uniform(-0.05, 0.05, 3)), target, DT_S)
        target = target + out.command.delta_pos_m
        assert BOX.contains(target, tol_m=1e-12)
    at_wall = f.filter(_cmd(dz=-0.03), np.array([0.5, 0.0, 0.0]), DT_S)
    assert at_wall.command.delta_pos_m[2] == pytest.approx(0.0) and "workspace" in at_wall.clipped


def test_rotation_and_gripper_are_bounded():
    f = _make_filter(max_step_rad=0.1, max_angvel_rad_s=10.0)
    out = f.filter(_cmd(rot=(0.0, 0.0, 1.0), gripper=1.7), np.array([0.5, 0, 0.2]), DT_S)
    assert np.linalg.norm(out.command.delta_rotvec_rad) == pytest.approx(0.1)
    assert out.command.gripper == 1.0 and {"rotation", "gripper"} <= set(out.clipped)


def test_safe_commands_pass_unchanged():
    f = _make_filter()
    out = f.filter(_cmd(dx=0.005, dy=-0.004, rot=(0, 0, 0.02), gripper=0.3), np.array([0.5, 0, 0.2]), DT_S)
    assert not out.rejected and out.clipped == ()
    np.testing.assert_allclose(out.command.delta_pos_m, [0.005, -0.004, 0.0])


def test_an_out_of_box_target_is_not_snapped_back():
    """The issue's case: target 0.8 m outside the box; one command moved it 0.8 m with rejected=False."""
    f = _make_filter(max_step_m=0.03, max_speed_m_s=0.3, max_accel_m_s2=3.0)
    out = f.filter(_cmd(dx=-0.02), np.array([1.5, 0.0, 0.2]), 0.02)
    assert not out.rejected and "workspace" in out.clipped
    np.testing.assert_allclose(out.command.delta_pos_m, [-0.0012, 0.0, 0.0])  # 3 m/s^2 * (0.02 s)^2, toward the box
    away = f.filter(_cmd(dx=0.03, dy=0.01), np.array([1.5, 0.0, 0.2]), 0.02)  # farther out in x: x may only come back
    assert away.command.delta_pos_m[0] < 0 and away.command.delta_pos_m[1] > 0


@pytest.mark.parametrize("where", ["target", "last_gripper"])
def test_non_finite_state_is_rejected_and_the_hold_gripper_is_finite(where):
    f = _make_filter()
    f.filter(_cmd(dx=0.01, gripper=0.6), np.array([0.5, 0, 0.2]), DT_S)  # the last gripper let through: 0.6
    target, last = (np.array([0.5, np.nan, 0.2]), 0.3) if where == "target" else (np.array([0.5, 0, 0.2]), np.nan)
    out = f.filter(_cmd(dx=0.01, gripper=0.9), target, DT_S, last_gripper=last)
    assert out.rejected and where in out.reason and not out.command.delta_pos_m.any()
    assert out.command.gripper == (0.3 if where == "target" else 0.6)  # last_gripper, else the last one let through


@pytest.mark.parametrize("dt_s", [0.0, -0.1, np.nan, np.inf, 1e-9, 1e6, "fast"])
def test_a_bad_dt_is_rejected_not_raised(dt_s):
    out = _make_filter().filter(_cmd(dx=0.01), np.array([0.5, 0, 0.2]), dt_s, last_gripper=0.4)
    assert out.rejected and "dt_s" in out.reason and out.command.gripper == 0.4


def test_braking_stops_at_the_wall_within_the_acceleration_limit():
    f = _make_filter(max_step_m=0.03, max_speed_m_s=0.3, max_accel_m_s2=3.0)
    target, prev_vel, dt_s = np.array([0.5, 0.0, 0.2]), np.zeros(3), 0.02
    for _ in range(100):  # full speed at the +x wall, 0.2 m away
        d = f.filter(_cmd(dx=0.03), target, dt_s).command.delta_pos_m
        assert np.linalg.norm(d / dt_s - prev_vel) <= 3.0 * dt_s * (1 + 1e-9)
        target, prev_vel = target + d, d / dt_s
        assert target[0] <= BOX.high_m[0]
    assert target[0] == pytest.approx(BOX.high_m[0], abs=1e-3) and np.linalg.norm(prev_vel) < 1e-3


def test_invalid_limits_are_refused_with_the_field_name():
    with pytest.raises(ValueError, match="max_speed_m_s"):
        SafetyLimits(workspace=BOX, max_speed_m_s=0.0)
    with pytest.raises(ValueError, match="below high"):
        WorkspaceBox(low_m=(0, 0, 0.5), high_m=(1, 1, 0.4))


def test_watchdog_expires_when_commands_stop():
    dog = CommandWatchdog(timeout_s=0.25)
    assert dog.expired(0.0)  # nothing received yet: hold
    dog.feed(1.0)
    assert not dog.expired(1.2)
    assert dog.expired(1.26)
    dog.feed(1.3)
    assert not dog.expired(1.5)


@pytest.mark.parametrize(
    "low,high",
    [
        ((np.nan, -0.2, 0.0), (0.7, 0.2, 0.4)),  # a NaN corner passed `low >= high` (False) and clipped targets to NaN
        ((0.3, -0.2, 0.0), (0.7, 0.2, np.inf)),  # no limit at all
        ((0.7, -0.2, 0.0), (0.3, 0.2, 0.4)),  # low above high
        ((0.3, -0.2, 0.2), (0.7, 0.2, 0.2)),  # zero-size box
        ((0.3, -0.2), (0.7, 0.2)),  # two numbers: z unbounded
    ],
)
def test_a_workspace_that_bounds_nothing_is_refused_where_it_is_made(low, high):
    """Node parameters (workspace_low_m / high_m) build the box directly, without the calibration file's checks."""
    with pytest.raises(ValueError, match="workspace low"):
        WorkspaceBox(low_m=low, high_m=high)
