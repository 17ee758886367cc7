"""The last gate before any robot: the safety filter and the command watchdog.

Every end-effector command, from a policy or a person, passes `SafetyFilter.filter` before it
reaches a `Robot` (sim or hardware). The guarantee, for ANY inputs (any command, current target,
dt_s, last gripper; NaN, inf, wrong shapes, a target far outside the box, a tightened box):

* `filter` never raises on bad data and every command it returns is finite, with gripper in [0, 1].
* Rejected (`rejected=True`: a non-finite or malformed command part, target, last gripper, or a
  dt_s outside [MIN_DT_S, MAX_DT_S]): the command is a hold (zero deltas; gripper = last_gripper
  clipped to [0, 1], or, when that is not finite, the last gripper this filter let through, or 0).
  A hold is a stop: the next command accelerates from rest.
* Accepted, with d = delta_pos_m, p = target_pos_m, v = d / dt_s and v_prev the velocity of the
  previous accepted command (zero after `reset()`, a rejection, or at construction):
  - |d| <= min(max_step_m, max_speed_m_s * dt_s) and |delta_rotvec_rad| <= min(max_step_rad, max_angvel_rad_s * dt_s);
  - workspace, per axis: an axis inside the box stays inside; an axis outside only moves toward
    the box (never farther out), so an out-of-box target is brought back at the rate limits over
    several steps, never snapped into the box;
  - |v - v_prev| <= max_accel_m_s2 * dt_s whenever the inputs continue the filter's own commands
    (p = previous p + previous d, same dt_s and limits) since the last time the velocity was zero.
    To make that hold at the walls, the velocity toward each wall is limited so the target can
    always stop inside the box at max_accel_m_s2 ("braking"). When the inputs jump (the target was
    moved by hand or re-synced, dt_s changed) the acceleration limit can conflict with the step,
    speed or workspace limits; those win, and the filter brakes as little as they allow (never
    harder than a stop: |v - v_prev| <= |v_prev|), recording "accel" and saying so in `reason`.
  - gripper = clip(cmd.gripper, 0, 1).

It reports what it changed (`FilterResult.clipped`), so callers can log and count interventions.
`CommandWatchdog` tells a driver to hold the arm when commands stop arriving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_rl.interfaces import EECommand, WorkspaceBox

MIN_DT_S, MAX_DT_S = 1e-6, 1e3  # accepted control periods; outside: rejected (no controller runs at 1 MHz or 1/ks)
_BRAKE_ROOM_CAP_M = 1e3  # braking room beyond this changes nothing physical and would overflow the arithmetic
_REL_TOL = 1e-9  # slack for rounding in feasibility tests


@dataclass(frozen=True)
class SafetyLimits:
    workspace: WorkspaceBox  # the tool target never leaves this box (and, outside it, only moves toward it)
    max_step_m: float = 0.03  # largest translation per command
    max_step_rad: float = 0.15  # largest rotation per command
    max_speed_m_s: float = 0.30  # translation rate limit
    max_angvel_rad_s: float = 1.5  # rotation rate limit
    max_accel_m_s2: float = 3.0  # limit on the change of commanded translational velocity

    def __post_init__(self) -> None:
        for name in ("max_step_m", "max_step_rad", "max_speed_m_s", "max_angvel_rad_s", "max_accel_m_s2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"SafetyLimits.{name} must be a positive finite number, got {value!r}")


@dataclass
class FilterResult:
    command: EECommand  # what may be sent to the robot
    rejected: bool  # the input was unusable (non-finite, malformed, bad dt_s): command is a hold
    # which limits changed the command: "workspace", "braking", "step", "speed", "accel", "rotation", "gripper"
    clipped: tuple[str, ...]
    reason: str = ""  # human-readable, for the log line


def _norm(v: np.ndarray) -> float:
    """Euclidean length; inf (not a warning) when the squares overflow, which every limit then treats as too far."""
    with np.errstate(over="ignore"):
        return math.sqrt(float(v @ v))


def _clip_norm(v: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    n = _norm(v)
    if n <= limit:
        return v, False
    return v * (limit / n), True


def _into(d: np.ndarray, low: np.ndarray, high: np.ndarray, radius: float) -> np.ndarray:
    """A point of {low <= d <= high, |d| <= radius} near d (low <= 0 <= high: the set contains 0 and is star-shaped)."""
    return _clip_norm(np.minimum(np.maximum(d, low), high), radius)[0]


def _last_inside(q: np.ndarray, w: np.ndarray, low: np.ndarray, high: np.ndarray, radius: float) -> float:
    """Largest s in [0, 1] with q + s*w in {low <= . <= high, |.| <= radius}, for q in that set."""
    s = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s_box = np.where(w > 0, (high - q) / w, np.where(w < 0, (low - q) / w, np.inf))
    s = min(s, float(np.min(s_box)))
    ww, qw, qq = float(w @ w), float(q @ w), float(q @ q)
    if ww > 0 and _norm(q + s * w) > radius:  # |q + s w| = radius: the larger root
        s = min(s, (-qw + math.sqrt(max(qw * qw - ww * (qq - radius * radius), 0.0))) / ww)
    return max(s, 0.0)


def _meet_accel(d1: np.ndarray, prev: np.ndarray, accel_m: float, low, high, radius: float) -> np.ndarray | None:
    """A displacement in {low <= d <= high, |d| <= radius} within accel_m of prev, close to d1 (in that set already);
    None when none is found (the acceleration limit conflicts with the others)."""
    if _norm(d1 - prev) <= accel_m:
        return d1
    q = _into(prev, low, high, radius)  # the allowed displacement nearest the previous one (nearly)
    if _norm(q - prev) > accel_m * (1 + _REL_TOL):
        return None
    d2 = prev + _clip_norm(d1 - prev, accel_m)[0]  # the reachable displacement nearest d1
    d = q + _last_inside(q, d2 - q, low, high, radius) * (d2 - q)  # on the segment q -> d2: both reachable
    return _into(d, low, high, radius)  # rounding only


def _braking_room(room_m: float, brake_m: float) -> float:
    """Largest step x >= 0 toward a wall room_m away after which the target can still stop before the wall,
    slowing its per-axis step by brake_m each period: x + x^2 / (2 brake_m) <= room_m (which bounds the
    stopping distance x - brake_m + x - 2 brake_m + ...). Never NaN: room 0 or brake_m 0 give 0."""
    room = min(room_m, _BRAKE_ROOM_CAP_M)
    if not (room > 0 and brake_m > 0):
        return 0.0
    return 2.0 * room / (1.0 + math.sqrt(1.0 + 2.0 * room / brake_m))  # overflow gives inf, hence 0: no room


def clip_toward_box(point_m: np.ndarray, reference_m: np.ndarray, box: WorkspaceBox) -> np.ndarray:
    """`point_m` clipped into `box`, except that an axis on which `reference_m` is outside the box may stay out
    as far as `reference_m` is (never farther): the box clip of a robot's target that never snaps an
    out-of-box target into the box (a jump of up to the whole distance out). Inside the box it is `box.clip`."""
    ref = np.asarray(reference_m, dtype=np.float64)
    low, high = np.asarray(box.low_m, dtype=np.float64), np.asarray(box.high_m, dtype=np.float64)
    return np.clip(np.asarray(point_m, dtype=np.float64), np.minimum(low, ref), np.maximum(high, ref))


def command_deltas(cmd: EECommand) -> tuple[np.ndarray, np.ndarray]:
    """(delta_pos_m, delta_rotvec_rad) of `cmd` as float64 (3,) arrays, checked before a Robot moves: ValueError
    when a shape is wrong or a value (the gripper's too) is not finite."""
    delta_pos = np.asarray(cmd.delta_pos_m, dtype=np.float64)
    delta_rot = np.asarray(cmd.delta_rotvec_rad, dtype=np.float64)
    if delta_pos.shape != (3,) or delta_rot.shape != (3,):
        raise ValueError(
            f"EECommand needs delta_pos_m and delta_rotvec_rad of shape (3,), got {delta_pos.shape} "
            f"and {delta_rot.shape}"
        )
    if not (np.all(np.isfinite(delta_pos)) and np.all(np.isfinite(delta_rot)) and math.isfinite(cmd.gripper)):
        raise ValueError(f"EECommand must be finite, got {cmd}; nothing was sent to the arm")
    return delta_pos, delta_rot


def lead_limited_target(
    target_m: np.ndarray, delta_m: np.ndarray, tool_m: np.ndarray, box: WorkspaceBox, max_lead_m: float
) -> np.ndarray:
    """A Robot's next tool target: `target_m + delta_m` clipped toward `box` (never snapped in from outside, see
    `clip_toward_box`), then kept within `max_lead_m` of the measured tool so a blocked arm does not wind up."""
    target = clip_toward_box(target_m + delta_m, target_m, box)
    lead = target - tool_m
    lead_norm = float(np.linalg.norm(lead))
    if lead_norm > max_lead_m:
        target = clip_toward_box(tool_m + lead * (max_lead_m / lead_norm), tool_m, box)
    return target


class SafetyFilter:
    """Stateful filter for one arm: it remembers the previous command for the acceleration limit."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self._low_m = np.asarray(limits.workspace.low_m, dtype=np.float64)
        self._high_m = np.asarray(limits.workspace.high_m, dtype=np.float64)
        self._prev_vel_m_s = np.zeros(3)
        self._last_gripper = 0.0  # last gripper this filter let through: the hold's fallback

    def reset(self) -> None:
        """Forget the previous command's velocity (call at episode start or after a hold)."""
        self._prev_vel_m_s = np.zeros(3)

    def hold_command(self, gripper: float = 0.0) -> EECommand:
        """Zero deltas; the gripper keeps `gripper` (clipped to [0, 1]; a non-finite one falls back to the
        last gripper this filter let through, else 0 (open), since dropping a held object is not safe either)."""
        try:
            gripper = float(gripper)
        except (TypeError, ValueError):
            gripper = math.nan
        if not math.isfinite(gripper):
            gripper = self._last_gripper
        return EECommand(delta_pos_m=np.zeros(3), delta_rotvec_rad=np.zeros(3), gripper=min(max(gripper, 0.0), 1.0))

    def filter(self, cmd: EECommand, target_pos_m: np.ndarray, dt_s: float, last_gripper: float = 0.0) -> FilterResult:
        """Make `cmd` safe to apply to a tool target currently at `target_pos_m` (base frame); see the module doc."""
        checked = _validate(cmd, target_pos_m, dt_s, last_gripper)
        if isinstance(checked, str):
            return self._reject(checked, last_gripper)
        want_m, rot, gripper_in, target, dt = checked
        delta, clipped, note = self._translation(want_m, target, dt)
        lim = self.limits
        rot, hit = _clip_norm(rot, min(lim.max_step_rad, lim.max_angvel_rad_s * dt))
        clipped += ["rotation"] if hit else []
        gripper = min(max(gripper_in, 0.0), 1.0)
        clipped += ["gripper"] if gripper != gripper_in else []
        self._prev_vel_m_s = delta / dt
        self._last_gripper = gripper
        reason = f"limited by {', '.join(clipped)}{note}" if clipped else ""
        return FilterResult(EECommand(delta, rot, gripper), rejected=False, clipped=tuple(clipped), reason=reason)

    def _translation(self, want_m: np.ndarray, target_m: np.ndarray, dt_s: float) -> tuple[np.ndarray, list[str], str]:
        """The translation step: workspace, braking, step and speed, then acceleration (see the module doc)."""
        lim, clipped = self.limits, []
        to_low, to_high = self._low_m - target_m, self._high_m - target_m
        room_low, room_high = np.minimum(to_low, 0.0), np.maximum(to_high, 0.0)  # outside: only toward the box
        d0 = np.minimum(np.maximum(want_m, to_low), to_high)  # desired: into the box (outside, this pulls toward it)
        clipped += ["workspace"] if (d0 != want_m).any() else []
        brake_m = lim.max_accel_m_s2 * dt_s * dt_s / math.sqrt(3.0)  # per-axis slowing per period, |dv| <= accel
        brake_low = np.array([-_braking_room(-r, brake_m) for r in room_low.tolist()])
        brake_high = np.array([_braking_room(r, brake_m) for r in room_high.tolist()])
        db = np.minimum(np.maximum(d0, brake_low), brake_high)
        n = _norm(db)
        clipped += ["step"] if n > lim.max_step_m else []
        clipped += ["speed"] if n > lim.max_speed_m_s * dt_s else []
        radius = min(lim.max_step_m, lim.max_speed_m_s * dt_s)
        prev, accel_m = self._prev_vel_m_s * dt_s, lim.max_accel_m_s2 * dt_s * dt_s
        d1 = _clip_norm(db, radius)[0]
        clipped += ["braking"] if (d1 != _clip_norm(d0, radius)[0]).any() else []  # it bound, not just cut
        d = _meet_accel(d1, prev, accel_m, brake_low, brake_high, radius)
        if d is None:  # braking room and acceleration disagree (the inputs jumped): keep to the hard limits only
            d1 = _clip_norm(d0, radius)[0]
            d = _meet_accel(d1, prev, accel_m, room_low, room_high, radius)
        note = ""
        if d is None:  # even the hard limits and the acceleration limit disagree: they win, braking the least
            d = _into(prev, room_low, room_high, radius)
            note = " (acceleration limit unreachable after a jump of target or dt_s: braking harder)"
        clipped += ["accel"] if (d != d1).any() or note else []  # the limit was not met even when d == d1
        return d, clipped, note

    def _reject(self, reason: str, last_gripper: float) -> FilterResult:
        self._prev_vel_m_s = np.zeros(3)
        return FilterResult(
            self.hold_command(last_gripper), rejected=True, clipped=(), reason=f"rejected: {reason}; holding"
        )


def _validate(cmd: EECommand, target_pos_m, dt_s, last_gripper) -> tuple | str:
    """(delta m, rotvec rad, gripper, target m, dt s) as finite float64 values, or why not (a reason string)."""
    arrays = {}
    for name, value in (
        ("delta_pos_m", cmd.delta_pos_m),
        ("delta_rotvec_rad", cmd.delta_rotvec_rad),
        ("target_pos_m", target_pos_m),
    ):
        try:
            arrays[name] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return f"{name} is not numeric: {value!r}"
        if arrays[name].shape != (3,):
            return f"{name} must have shape (3,), got {arrays[name].shape}"
    scalars = {}
    for name, value in (("gripper", cmd.gripper), ("last_gripper", last_gripper), ("dt_s", dt_s)):
        try:
            scalars[name] = float(value)
        except (TypeError, ValueError):
            return f"{name} is not a number: {value!r}"
    bad = [n for n, v in arrays.items() if not np.isfinite(v).all()]
    bad += [n for n, v in scalars.items() if not math.isfinite(v)]
    if bad:
        return f"non-finite values in {', '.join(bad)}"
    if not MIN_DT_S <= scalars["dt_s"] <= MAX_DT_S:
        return f"dt_s={scalars['dt_s']!r} is outside [{MIN_DT_S}, {MAX_DT_S}] s"
    return (
        arrays["delta_pos_m"],
        arrays["delta_rotvec_rad"],
        scalars["gripper"],
        arrays["target_pos_m"],
        scalars["dt_s"],
    )


class CommandWatchdog:
    """Says when the arm must hold because commands stopped for longer than `timeout_s`.

    Times are monotonic seconds supplied by the caller (so sim time and wall time both work).
    """

    def __init__(self, timeout_s: float):
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"watchdog timeout_s must be positive, got {timeout_s!r}")
        self.timeout_s = timeout_s
        self._last_command_t: float | None = None

    def feed(self, t: float) -> None:
        """A valid command arrived at time t."""
        self._last_command_t = t

    def expired(self, t: float) -> bool:
        """True when no command arrived in the last `timeout_s` (or none ever did)."""
        return self._last_command_t is None or t - self._last_command_t > self.timeout_s
