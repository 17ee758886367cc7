"""Property test of the safety filter: random limits, boxes, dt, states far outside the box, huge and
non-finite values anywhere; every output is checked against each limit recomputed from the output and the
previous output (nothing here reuses the filter's code)."""

from __future__ import annotations

import math

import numpy as np

from robot_rl.interfaces import EECommand, WorkspaceBox
from robot_rl.safety import SafetyFilter, SafetyLimits

N_SEQUENCES, STEPS_PER_SEQUENCE = 1700, 60  # 102,000 filter calls
REL, ABS_M = 1e-7, 1e-12  # tolerance of the checks (rounding only)
_F64_MAX = float(np.finfo(np.float64).max)


def _norm(v) -> float:
    return math.sqrt(float(v @ v))


def _log_uniform(rng, low, high):
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _random_setup(rng):
    low = rng.uniform(-1.0, 1.0, 3)
    box = WorkspaceBox(tuple(low), tuple(low + rng.uniform(0.01, 1.0, 3)))
    extreme = rng.random() < 0.1  # now and then limits far from any real robot's
    span = (1e-6, 1e6) if extreme else (1.0, 1.0)
    limits = SafetyLimits(
        workspace=box,
        max_step_m=_log_uniform(rng, 1e-3 / span[1], 0.1 * span[1]),
        max_step_rad=_log_uniform(rng, 0.01, 1.0),
        max_speed_m_s=_log_uniform(rng, 0.01 * span[0], 2.0 * span[1]),
        max_angvel_rad_s=_log_uniform(rng, 0.1, 5.0),
        max_accel_m_s2=_log_uniform(rng, 0.1 * span[0], 100.0 * span[1]),
    )
    return limits, _log_uniform(rng, 1e-3, 0.5)


def _random_target(rng, box):
    low, high = np.array(box.low_m), np.array(box.high_m)
    kind = rng.integers(4)
    if kind == 0:
        return rng.uniform(low, high)
    if kind == 1:  # on or next to a wall
        p = rng.uniform(low, high)
        axis = rng.integers(3)
        p[axis] = (low if rng.random() < 0.5 else high)[axis] + rng.normal(0, 1e-3)
        return p
    scale = 1.0 if kind == 2 else float(rng.choice([1e4, 1e300]))  # outside: near, far, or absurdly far
    return rng.uniform(low, high) + rng.normal(0, scale, 3)


def _random_command(rng, target, box, dt_s):
    kind = rng.integers(5)
    if kind == 0:
        delta = rng.normal(0, 0.01, 3)
    elif kind == 1:
        with np.errstate(over="ignore"):  # huge, up to float64's largest finite value (|v|^2 overflows)
            delta = np.clip(rng.normal(0, 1.0, 3) * 10.0 ** rng.integers(0, 309), -_F64_MAX, _F64_MAX)
    elif kind == 2:  # a pose target anywhere: the delta to it
        delta = _random_target(rng, box) - target
    elif kind == 3:  # full speed into a wall
        delta = np.zeros(3)
        delta[rng.integers(3)] = rng.choice([-1.0, 1.0]) * 5.0 * dt_s
    else:
        delta = np.zeros(3)
    return delta, rng.normal(0, 0.5, 3), float(rng.uniform(-1.0, 2.0))


def _corrupt(rng, delta, rot, gripper, target, last_gripper, dt_s):
    """Put a NaN/inf, a wrong shape or a bad dt into one input."""
    bad = rng.choice([np.nan, np.inf, -np.inf])
    where = rng.integers(7)
    if where == 0:
        delta = delta.copy()
        delta[rng.integers(3)] = bad  # noqa: E702
    elif where == 1:
        rot = rot.copy()
        rot[rng.integers(3)] = bad  # noqa: E702
    elif where == 2:
        gripper = bad
    elif where == 3:
        target = target.copy()
        target[rng.integers(3)] = bad  # noqa: E702
    elif where == 4:
        last_gripper = bad
    elif where == 5:
        dt_s = rng.choice([np.nan, np.inf, 0.0, -0.01, 1e-12, 1e9])
    else:
        delta = np.zeros(rng.choice([2, 4]))
    return delta, rot, gripper, target, last_gripper, dt_s


class Checker:
    """Tracks the previous output; asserts every limit of one filter call from the inputs and outputs alone."""

    def __init__(self, limits: SafetyLimits):
        self.lim = limits
        self.low, self.high = np.array(limits.workspace.low_m), np.array(limits.workspace.high_m)
        self.prev_vel = np.zeros(3)
        self.continuous = True  # inputs continued the filter's own outputs since the velocity was last zero
        self.counts = {"calls": 0, "rejected": 0, "moved": 0, "accel_conflicts": 0, "outside": 0}

    def check(self, out, gripper_in, target, last_gripper, dt_s, valid: bool) -> None:
        self.counts["calls"] += 1
        c = out.command
        delta, rot = np.asarray(c.delta_pos_m), np.asarray(c.delta_rotvec_rad)
        assert delta.shape == (3,) and rot.shape == (3,), out
        assert np.isfinite(delta).all() and np.isfinite(rot).all() and math.isfinite(c.gripper), out
        assert 0.0 <= c.gripper <= 1.0, out
        assert out.rejected == (not valid), (out, valid)
        if out.rejected:
            self.counts["rejected"] += 1
            assert not delta.any() and not rot.any(), out
            if math.isfinite(last_gripper):
                assert c.gripper == min(max(last_gripper, 0.0), 1.0), out
            self.prev_vel, self.continuous = np.zeros(3), True
            return
        lim = self.lim
        step = _norm(delta)
        assert step <= min(lim.max_step_m, lim.max_speed_m_s * dt_s) * (1 + REL) + ABS_M, (step, out)
        assert _norm(rot) <= min(lim.max_step_rad, lim.max_angvel_rad_s * dt_s) * (1 + REL), out
        assert c.gripper == min(max(gripper_in, 0.0), 1.0)
        tol = ABS_M + REL * float(np.max(np.abs(target)))
        after = target + delta
        outside_before = np.maximum(self.low - target, 0) + np.maximum(target - self.high, 0)
        outside_after = np.maximum(self.low - after, 0) + np.maximum(after - self.high, 0)
        assert (outside_after <= outside_before + tol).all(), (target, delta, out)  # per axis: never farther out
        self.counts["outside"] += bool((outside_before > 0).any())
        vel = delta / dt_s
        dv = _norm(vel - self.prev_vel)
        if dv > lim.max_accel_m_s2 * dt_s * (1 + 1e-6) + ABS_M / dt_s:
            assert not self.continuous, ("accel violated on continuous inputs", dv, lim.max_accel_m_s2 * dt_s, out)
            assert dv <= _norm(self.prev_vel) * (1 + REL) + ABS_M / dt_s, "braked harder than a stop"
            assert "accel" in out.clipped and "unreachable" in out.reason, out
            self.counts["accel_conflicts"] += 1
        self.counts["moved"] += step > 0
        self.prev_vel = vel
        if not vel.any():
            self.continuous = True


def _run_sequence(rng, checker_counts):
    limits, dt_s = _random_setup(rng)
    filt, checker = SafetyFilter(limits), Checker(limits)
    target, last_gripper = _random_target(rng, limits.workspace), float(rng.uniform(0, 1))
    for _ in range(STEPS_PER_SEQUENCE):
        event = rng.random()
        if event < 0.02:  # the arm was moved by hand / the target re-synced
            target, checker.continuous = _random_target(rng, limits.workspace), False
        elif event < 0.04:  # the control period changed
            dt_s, checker.continuous = _log_uniform(rng, 1e-3, 0.5), False
        elif event < 0.05:
            filt.reset()
            checker.prev_vel, checker.continuous = np.zeros(3), True
        delta, rot, gripper = _random_command(rng, target, limits.workspace, dt_s)
        args = (delta, rot, gripper, target, last_gripper, dt_s)
        valid = rng.random() >= 0.05
        if not valid:
            args = _corrupt(rng, *args)
        delta, rot, gripper, target_in, last_in, dt_in = args
        out = filt.filter(EECommand(delta, rot, gripper), target_in, dt_in, last_gripper=last_in)
        checker.check(out, gripper, target_in, last_in, dt_in, valid)
        target = target + out.command.delta_pos_m
        last_gripper = out.command.gripper
    for k, v in checker.counts.items():
        checker_counts[k] = checker_counts.get(k, 0) + v


def test_no_output_ever_breaks_a_limit():
    rng = np.random.default_rng(20240607)
    counts: dict[str, int] = {}
    for _ in range(N_SEQUENCES):
        _run_sequence(rng, counts)
    print(counts)
    assert counts["calls"] >= 100_000
    assert counts["rejected"] > 3000 and counts["moved"] > 50_000 and counts["outside"] > 10_000  # all kinds ran
    assert counts["accel_conflicts"] < 0.01 * counts["calls"]  # only after jumps, and rare


def test_an_out_of_box_target_comes_back_at_the_limits_monotonically():
    box = WorkspaceBox(low_m=(0.3, -0.2, 0.0), high_m=(0.7, 0.2, 0.4))
    limits = SafetyLimits(workspace=box, max_step_m=0.03, max_speed_m_s=0.3, max_accel_m_s2=3.0)
    dt_s = 0.02
    rng = np.random.default_rng(1)
    for start in ([1.5, 0.0, 0.2], [0.5, -0.9, -0.3], [-0.2, 0.6, 1.1]):
        filt, target = SafetyFilter(limits), np.array(start)
        distance_m = float(np.linalg.norm(target - box.clip(target)))
        v_max = min(limits.max_step_m / dt_s, limits.max_speed_m_s)
        ramp_steps = v_max / (limits.max_accel_m_s2 * dt_s)  # to full speed, and again to slow down at the box
        bound = math.ceil(distance_m / (v_max * dt_s) + 2 * ramp_steps) + 2
        prev_vel, steps = np.zeros(3), 0
        while not box.contains(target):
            away = (target - box.clip(target)) * rng.uniform(0, 100)  # a command pushing farther out
            out = filt.filter(EECommand(away), target, dt_s)
            d = out.command.delta_pos_m
            assert not out.rejected and np.linalg.norm(d) <= 0.3 * dt_s + 1e-12
            assert np.linalg.norm(d / dt_s - prev_vel) <= limits.max_accel_m_s2 * dt_s * (1 + 1e-9)
            new_distance = float(np.linalg.norm(target + d - box.clip(target + d)))
            assert new_distance <= distance_m + 1e-12
            target, distance_m, prev_vel, steps = target + d, new_distance, d / dt_s, steps + 1
            assert steps <= bound, f"not back in the box after {bound} steps from {start}"
        assert steps >= 10  # it was brought back over many steps, not snapped in
