"""The arm node's `reset` service: move home, on every adapter.

An adapter with a home move of its own (`go_home`: the simulated task cell's randomised episode start, a
franky / ur_rtde joint move) keeps it: the service calls it and waits. An adapter without one gives a home
tool pose instead (`ArmAdapter.home_pose`, e.g. `ros2_control.home_pos_m`): the node then *streams* targets
from the current pose to it, one per control period, through the same command path as every other motion
command (`arm_commands.py`: the safety filter's step, speed, acceleration, rotation and workspace limits,
the target kept within `max_target_lead_m` of the measured tool), decelerating so it stops at home. The
service answers when the streamed target has come to rest at home and the measured tool is within
`home_tolerance_m` / `home_tolerance_rad` of it (success), or after
`home_timeout_s` (failure, with how far the tool still is); e-stop, a fault or deactivation end it at once
(failure). While it runs, ee_command, ee_target and gripper_command are refused and a second `reset` too.
Each outcome is the service answer, `arm_status`'s `reset` field and one log line.

The service callback is a coroutine in a callback group of its own (reentrant: a second request is answered
at once): it awaits the move's future while the executor keeps running the control timer (which advances
and ends the move) and the e-stop subscription, in the node's default group.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.task import Future
from std_srvs.srv import Trigger

from robot_rl_drivers.adapters import AdapterError
from robot_rl_drivers.arm_pose import rotation_between


@dataclass
class HomeMove:
    """One streamed home move: where to, by when, and the future the `reset` service awaits."""

    pos_m: np.ndarray
    quat_wxyz: np.ndarray
    started_s: float  # monotonic
    deadline_s: float  # monotonic
    done: Future = field(default_factory=Future)
    targets_at_home: int = 0  # control periods in a row the commanded target has been at home (at rest there)

    def next_target(self, target_m: np.ndarray, dt_s: float, accel_m_s2: float) -> np.ndarray:
        """The next tool target toward home from `target_m`, slow enough to stop there at `accel_m_s2` (the safety
        filter then bounds step, speed and acceleration; without braking it would overshoot home and swing back)."""
        to_home = self.pos_m - target_m
        dist_m = float(np.linalg.norm(to_home))
        if dist_m < 1e-9:
            return self.pos_m.copy()
        step_m = min(dist_m, math.sqrt(accel_m_s2 * dist_m) * dt_s)  # braking at half the limit: margin for the steps
        return target_m + to_home * (step_m / dist_m)

    def distance(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> tuple[float, float]:
        """(metres, radians) from a tool pose to home."""
        return (
            float(np.linalg.norm(self.pos_m - pos_m)),
            float(np.linalg.norm(rotation_between(quat_wxyz, self.quat_wxyz))),
        )


class ArmHoming:
    """`reset` of `ArmNode` (a mixin): the adapter's own home move, or a streamed one (`HomeMove`)."""

    homing: HomeMove | None = None
    reset_state = ""  # arm_status "reset": "", "moving home", the last outcome

    async def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        refusal = self._reset_refusal()
        if refusal:
            response.success, response.message = False, refusal
            self.get_logger().warning(f"reset refused: {refusal}")
            return response
        home = self.adapter.home_pose()
        if home is None:
            response.success, response.message = self._own_home_move()
        else:
            response.success, response.message = await self._stream_home(*home)
        return response

    def _reset_refusal(self) -> str:
        """Why `reset` cannot start now ("" when it can)."""
        reason = self._blocked()
        if reason not in ("", "watchdog", "no command yet") or self.robot is None:
            return f"cannot move home while {reason or self.hold_reason} (recover, or activate the node, first)"
        if self.homing is not None:
            return "a home move is already running; wait for its answer"
        home = self.adapter.home_pose()
        if home is not None:
            for name, box in (
                ("the node's workspace box", self.safety.limits.workspace),
                ("the adapter's workspace box", self.adapter.spec.workspace),
            ):
                if not box.contains(home[0]):
                    return (
                        f"the home position {np.round(home[0], 3).tolist()} lies outside {name} "
                        f"{box.low_m}..{box.high_m}; set {self.cfg.adapter}.home_pos_m inside it"
                    )
        return ""

    def _own_home_move(self) -> tuple[bool, str]:
        """The adapter's home move (blocking), then a hold until a new command arrives. On the period's priority: it is
        the arm's control path (the sim's reset settles its physics here, and an ordinary thread under load made the
        next period, and the actor's tick on its /clock, late)."""
        try:
            with self.tick_priority:
                done = self.robot.go_home() or f"moved home ({self.cfg.adapter} adapter)"
        except AdapterError as err:
            self.reset_state = f"failed: moving home failed: {err}"
            return False, f"moving home failed: {err}"
        self._clear_commands()
        self._hold("no command yet")
        self.reset_state = done
        return True, f"{done}; holding until a new command arrives"

    async def _stream_home(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> tuple[bool, str]:
        """Start a `HomeMove`, await its end (`_home_progress` / `_end_homing`), hold."""
        now = time.monotonic()
        move = HomeMove(
            np.asarray(pos_m, dtype=np.float64),
            np.asarray(quat_wxyz, dtype=np.float64),
            now,
            now + self.cfg.home_timeout_s,
        )
        self._clear_commands()
        self._gripper = 0.0  # open on the way
        self.homing, self.reset_state = move, "moving home"
        self.get_logger().info(
            f"reset: streaming targets to the home pose {np.round(move.pos_m, 3).tolist()} at the "
            f"safety limits (timeout {self.cfg.home_timeout_s} s)"
        )
        self.publish_status()
        success, message = await move.done
        self._clear_commands()
        self._hold(self._blocked() or "no command yet")  # an e-stop or fault that ended it keeps its reason
        return success, message

    def _home_progress(self) -> None:
        """Every control period while homing: done when the tool is home, failed after the timeout."""
        move = self.homing
        if move is None:
            return
        target_m, target_rad = move.distance(self.robot.target_pos_m, self.robot.target_quat_wxyz)
        move.targets_at_home = move.targets_at_home + 1 if target_m < 1e-4 and target_rad < 1e-3 else 0
        state = self.robot.read()
        dist_m, dist_rad = move.distance(state.ee_pos_m, state.ee_quat_wxyz)
        elapsed_s = time.monotonic() - move.started_s
        if (
            move.targets_at_home >= 2
            and dist_m <= self.cfg.home_tolerance_m
            and dist_rad <= self.cfg.home_tolerance_rad
        ):
            self._end_homing(True, f"moved home in {elapsed_s:.1f} s ({self.cfg.adapter} adapter, streamed targets)")
        elif time.monotonic() > move.deadline_s:
            self._end_homing(
                False,
                f"moving home timed out after {self.cfg.home_timeout_s} s: the tool is still "
                f"{dist_m:.3f} m and {dist_rad:.2f} rad from home; is the arm's controller "
                "running and following the streamed targets?",
            )

    def _end_homing(self, success: bool, message: str) -> None:
        """End a running home move (no-op when none runs): the answer, arm_status's `reset` and one log line."""
        move, self.homing = self.homing, None
        if move is None:
            return
        self.reset_state = message if success else f"failed: {message}"
        if success:
            self.get_logger().info(f"reset: {message}")
        else:
            self.get_logger().error(f"reset failed: {message}; holding")
        if not move.done.done():
            move.done.set_result((success, f"{message}; holding until a new command arrives" if success else message))
        self.publish_status()
