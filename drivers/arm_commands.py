"""The arm node's command path: the latest command latched, the watchdog, the safety filter, the hold.

`ArmCommandPath` is the half of `ArmNode` that turns `ee_command` (TwistStamped), `ee_target` (PoseStamped)
and `gripper_command` (Float64) into what reaches the arm each control period. It is written once and runs
for every arm, the simulated cell of `robot-rl-sim-node` included:

- a callback decodes a message (a malformed one is dropped and counted) and, while the node accepts
  commands (active, no estop, no fault), latches it; the newest kind (twist or pose target) wins;
- every period `_apply_command` holds the arm when it must (`_blocked`: inactive, estop, fault, or no valid
  command for `watchdog_timeout_s` of `now_s()`), else passes the latched command, as the delta of one
  period, through `robot_rl.safety.SafetyFilter` and sends what it lets through (a rejection holds);
- while `reset` streams a home move (`arm_homing.py`), the home pose is that command: the watchdog does not
  apply and every other command is refused.

The node supplies `cfg`, `dt_s`, `safety`, `robot`, `active`, `estop_latched`, `fault`, `hold_reason`,
`counts`, `homing`, `_hold(reason)` and `_set_fault(message)`.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import Float64

from robot_rl.interfaces import EECommand
from robot_rl.ros import convert, topics
from robot_rl.safety import CommandWatchdog
from robot_rl_drivers.adapters import AdapterError
from robot_rl_drivers.arm_pose import rotation_between


class ArmCommandPath:
    """Latched command, watchdog and safety filter of the arm node (a mixin of `ArmNode`)."""

    def now_s(self) -> float:
        """The watchdog's clock: monotonic seconds on hardware (the sim robot: simulation time)."""
        return time.monotonic()

    def _clear_commands(self) -> None:
        """Forget every command: the arm holds until a fresh one arrives."""
        self.watchdog = CommandWatchdog(self.cfg.watchdog_timeout_s)
        self._vel_m_s, self._angvel_rad_s = np.zeros(3), np.zeros(3)
        self._target: tuple[np.ndarray, np.ndarray] | None = None  # latest ee_target (pos m, quat wxyz)
        self._gripper = (
            0.0 if self.robot is None or self.robot.commanded_gripper is None else self.robot.commanded_gripper
        )
        self._commanded = False
        self.safety.reset()

    # --- every control period -------------------------------------------------------------------
    def _blocked(self) -> str:
        """Why the arm must hold now ("" when the latched command may pass)."""
        if not self.active:
            return "inactive"
        if self.estop_latched:
            return "estop"
        if self.fault:
            return "fault"
        if self.homing is not None:  # the home move is the command (arm_homing.py)
            return ""
        if self.watchdog.expired(self.now_s()):
            return "watchdog" if self._commanded else "no command yet"
        return ""

    def _apply_command(self) -> None:
        reason = self._blocked()
        if reason:
            if self.hold_reason != reason:
                if reason == "watchdog":
                    self.get_logger().warning(f"no ee_command for {self.cfg.watchdog_timeout_s} s: holding the arm")
                self._hold(reason)
            return
        robot = self.robot
        tool_m = np.asarray(robot.read().ee_pos_m, dtype=np.float64)
        if not np.isfinite(tool_m).all():  # a bad reading: never command from it (the filter checks the target)
            self.counts["rejected"] += 1
            self.get_logger().warning(f"non-finite measured tool position {tool_m}: holding", throttle_duration_sec=1.0)
            self._hold("non-finite state")
            return
        if (
            self.homing is not None
        ):  # streamed home move: decelerating toward home, bounded by the filter like any target
            pos = self.homing.next_target(robot.target_pos_m, self.dt_s, self.cfg.max_accel_m_s2)
            cmd = EECommand(
                pos - robot.target_pos_m, rotation_between(robot.target_quat_wxyz, self.homing.quat_wxyz), 0.0
            )
        elif self._target is not None:  # pose target: the delta to it, which the safety filter bounds per period
            pos, quat = self._target
            cmd = EECommand(pos - robot.target_pos_m, rotation_between(robot.target_quat_wxyz, quat), self._gripper)
        else:
            cmd = EECommand(self._vel_m_s * self.dt_s, self._angvel_rad_s * self.dt_s, self._gripper)  # twist * dt
        result = self.safety.filter(cmd, robot.target_pos_m, self.dt_s, last_gripper=self._gripper)
        if result.rejected:  # a hold (the filter also rejects a non-finite target: never a crash)
            self.counts["rejected"] += 1
            self.get_logger().warning(f"safety filter: {result.reason}", throttle_duration_sec=1.0)
            self._hold("rejected")
            return
        self.counts["clipped"] += bool(result.clipped)
        robot.command(result.command)
        self.counts["applied"] += 1
        self.hold_reason = ""

    # --- callbacks ----------------------------------------------------------------------------
    def _drop(self, topic: str, err: Exception) -> None:
        """A malformed command: counted (arm_status's `commands_dropped` and `refused` {topic: count}) and logged."""
        self.counts["dropped"] += 1
        self.refusals.counts[topic] += 1
        self.get_logger().warning(
            f"dropped {topic} message ({self.counts['dropped']} so far): {err}", throttle_duration_sec=1.0
        )

    def _accepting(self, topic: str) -> bool:
        if self.active and not self.estop_latched and not self.fault and self.homing is None:
            return True
        why = (
            "moving home (reset)"
            if self.homing is not None and not self._blocked()
            else f"arm is holding ({self._blocked() or self.hold_reason})"
        )
        self.get_logger().warning(f"ignoring {topic}: {why}", throttle_duration_sec=2.0)
        return False

    def _on_ee_command(self, msg: TwistStamped) -> None:
        try:
            vel, angvel = convert.velocity_from_twist(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            return self._drop(topics.EE_COMMAND, err)
        if self._accepting(topics.EE_COMMAND):
            self._vel_m_s, self._angvel_rad_s, self._target = vel, angvel, None  # the newest command kind wins
            self._commanded = True
            self.watchdog.feed(self.now_s())

    def _on_ee_target(self, msg: PoseStamped) -> None:
        try:
            target = convert.target_from_pose(msg, self.cfg.base_frame)
        except convert.MessageError as err:
            return self._drop(topics.EE_TARGET, err)
        if self._accepting(topics.EE_TARGET):
            self._target, self._vel_m_s, self._angvel_rad_s = target, np.zeros(3), np.zeros(3)
            self._commanded = True
            self.watchdog.feed(self.now_s())

    def _on_gripper_command(self, msg: Float64) -> None:
        try:
            closing = float(np.clip(convert.gripper_from_msg(msg), 0.0, 1.0))
        except convert.MessageError as err:
            return self._drop(topics.GRIPPER_COMMAND, err)
        if self._accepting(topics.GRIPPER_COMMAND) and self.robot is not None:
            self._gripper = closing
            try:
                self.robot.set_gripper(closing)
            except AdapterError as err:
                self._set_fault(str(err))
