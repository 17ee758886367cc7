"""The last gate before any robot: the safety filter and the command watchdog.

Every end-effector command, from a policy or a person, passes `SafetyFilter.filter` before it
reaches a `Robot` (sim or hardware). The filter

1. rejects commands with NaN/inf anywhere (the arm holds; nothing non-finite is ever sent),
2. limits the step: translation to `max_step_m` and `max_speed_m_s * dt_s`, rotation to
   `max_step_rad` and `max_angvel_rad_s * dt_s`, and the change of translational velocity
   between consecutive commands to `max_accel_m_s2 * dt_s`,
3. clips the resulting tool target into the workspace box,
4. clamps the gripper command to [0, 1].

It reports what it changed, so callers can log and count interventions of the filter itself.
`CommandWatchdog` tells a driver to hold the arm when commands stop arriving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_rl.interfaces import EECommand, WorkspaceBox


@dataclass(frozen=True)
class SafetyLimits:
    workspace: WorkspaceBox  # the tool target never leaves this box
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
    rejected: bool  # the input was unusable (non-finite): command is a hold
    clipped: tuple[str, ...]  # which limits changed the command: "step", "speed", "accel", "rotation", "workspace", "gripper"
    reason: str = ""  # human-readable, for the log line


def _clip_norm(v: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    n = float(np.linalg.norm(v))
    if n <= limit:
        return v, False
    return v * (limit / n), True


class SafetyFilter:
    """Stateful filter for one arm: it remembers the previous command for the acceleration limit."""

    def __init__(self, limits: SafetyLimits):
        self.limits = limits
        self._prev_vel_m_s = np.zeros(3)

    def reset(self) -> None:
        """Forget the previous command (call at episode start or after a hold)."""
        self._prev_vel_m_s = np.zeros(3)

    def hold_command(self, gripper: float = 0.0) -> EECommand:
        return EECommand(delta_pos_m=np.zeros(3), delta_rotvec_rad=np.zeros(3), gripper=float(np.clip(gripper, 0, 1)))

    def filter(self, cmd: EECommand, target_pos_m: np.ndarray, dt_s: float, last_gripper: float = 0.0) -> FilterResult:
        """Make `cmd` safe to apply to a tool target currently at `target_pos_m` (base frame)."""
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise ValueError(f"dt_s must be a positive finite number of seconds, got {dt_s!r}")
        parts = {
            "delta_pos_m": np.asarray(cmd.delta_pos_m, dtype=np.float64),
            "delta_rotvec_rad": np.asarray(cmd.delta_rotvec_rad, dtype=np.float64),
        }
        for name, value in parts.items():
            if value.shape != (3,):
                return self._reject(f"{name} must have shape (3,), got {value.shape}", last_gripper)
        bad = [n for n, v in parts.items() if not np.all(np.isfinite(v))]
        if not math.isfinite(float(cmd.gripper)):
            bad.append("gripper")
        if bad:
            return self._reject(f"non-finite values in {', '.join(bad)}", last_gripper)

        lim, clipped = self.limits, []
        delta, hit = _clip_norm(parts["delta_pos_m"], lim.max_step_m)
        clipped += ["step"] if hit else []
        delta, hit = _clip_norm(delta, lim.max_speed_m_s * dt_s)
        clipped += ["speed"] if hit else []
        vel = delta / dt_s
        dvel, hit = _clip_norm(vel - self._prev_vel_m_s, lim.max_accel_m_s2 * dt_s)
        if hit:
            clipped.append("accel")
            delta = (self._prev_vel_m_s + dvel) * dt_s
        target = np.asarray(target_pos_m, dtype=np.float64)
        inside = lim.workspace.clip(target + delta)
        if not np.allclose(inside, target + delta):
            clipped.append("workspace")
            delta = inside - target
        rot, hit = _clip_norm(parts["delta_rotvec_rad"], min(lim.max_step_rad, lim.max_angvel_rad_s * dt_s))
        clipped += ["rotation"] if hit else []
        gripper = float(np.clip(cmd.gripper, 0.0, 1.0))
        if gripper != cmd.gripper:
            clipped.append("gripper")
        self._prev_vel_m_s = delta / dt_s
        reason = f"limited by {', '.join(clipped)}" if clipped else ""
        return FilterResult(EECommand(delta, rot, gripper), rejected=False, clipped=tuple(clipped), reason=reason)

    def _reject(self, reason: str, last_gripper: float) -> FilterResult:
        self._prev_vel_m_s = np.zeros(3)
        return FilterResult(self.hold_command(last_gripper), rejected=True, clipped=(), reason=f"rejected: {reason}; holding")


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
