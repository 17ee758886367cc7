"""The actor's episode state machine (no ROS): reset, settle, run, pause on stale data, end.

    WAITING --request_reset--> RESETTING --reset_answered(ok)--> SETTLING --start--> RUNNING
       ^  (no policy yet, learner      |  failed / timed out                             |  ^
       |   lost with `hold`)           v                                    stale input  v  | data back
       +---------------------------- WAITING                                           PAUSED
       +------------------------- finish (terminated / truncated) <--------- RUNNING

The node holds the arm (zero twist) in every phase but RUNNING. `record_step` counts the steps of
the running episode and says how the step ended: terminated with reward 1 when the task's success
flag is up after the action (sparse reward = success), truncated after `max_episode_steps`.
Times are whatever clock the caller passes (the node: ROS time for data, monotonic for timeouts).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from robot_rl.acting.observation import StaleInput


class Phase(enum.Enum):
    WAITING = "waiting"  # no episode: waiting for a policy (warmup=hold) or the learner (on_learner_lost=hold)
    RESETTING = "resetting"  # the reset service was called, no answer yet
    SETTLING = "settling"  # reset done: waiting for a fresh sample of every input
    RUNNING = "running"  # acting at the control rate
    PAUSED = "paused"  # an input went stale mid-episode: holding until it is fresh again


@dataclass(frozen=True)
class StepOutcome:
    reward: float  # sparse: 1.0 on success, else 0.0
    terminated: bool  # success: the MDP ended
    truncated: bool  # the time limit cut the episode

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class EpisodeMachine:
    def __init__(self, max_episode_steps: int, reset_timeout_s: float = 10.0):
        if max_episode_steps < 1 or reset_timeout_s <= 0:
            raise ValueError(
                f"need max_episode_steps >= 1 and reset_timeout_s > 0; got {max_episode_steps}, {reset_timeout_s}"
            )
        self.max_episode_steps = max_episode_steps
        self.reset_timeout_s = reset_timeout_s
        self.phase = Phase.WAITING
        self.n_steps = 0  # steps recorded in the running episode
        self.t_reset_s = 0.0  # when the last reset finished (the data clock)
        self._t_request_s = 0.0  # when the last reset was requested (the timeout clock)
        self._t_paused_s = 0.0

    @property
    def acting(self) -> bool:
        return self.phase is Phase.RUNNING

    def request_reset(self, now_s: float) -> None:
        self._expect(Phase.WAITING, "request_reset")
        self.phase, self._t_request_s = Phase.RESETTING, now_s

    def reset_answered(self, ok: bool, now_s: float) -> None:
        """The reset service answered at `now_s` (data clock); a refusal goes back to WAITING to retry."""
        if self.phase is not Phase.RESETTING:  # a late answer after a timeout: ignore it
            return
        self.phase = Phase.SETTLING if ok else Phase.WAITING
        self.t_reset_s = now_s

    def reset_timed_out(self, now_s: float) -> bool:
        """True (and back to WAITING) when the reset service did not answer within reset_timeout_s."""
        if self.phase is Phase.RESETTING and now_s - self._t_request_s > self.reset_timeout_s:
            self.phase = Phase.WAITING
            return True
        return False

    def start(self) -> None:
        """Fresh data after the reset: the episode's first observation is taken now."""
        self._expect(Phase.SETTLING, "start")
        self.phase, self.n_steps = Phase.RUNNING, 0

    def check_inputs(self, stale: list[StaleInput], now_s: float) -> str:
        """Pause on stale inputs, resume when all are fresh; returns a log line on a change, else ""."""
        if self.phase is Phase.RUNNING and stale:
            self.phase, self._t_paused_s = Phase.PAUSED, now_s
            return f"pausing episode at step {self.n_steps}, holding the arm: " + ", ".join(s.describe() for s in stale)
        if self.phase is Phase.PAUSED and not stale:
            self.phase = Phase.RUNNING
            return f"inputs fresh again: resuming episode at step {self.n_steps} after {now_s - self._t_paused_s:.2f} s"
        return ""

    def record_step(self, success: bool, verdict: str | None = None) -> StepOutcome:
        """One more action completed; `success` is the task flag observed after it. A person's `verdict` overrides
        it: "success" ends the episode terminated with reward 1, "failure" terminated with reward 0 (the person
        judged it lost: no bootstrapping past it)."""
        self._expect(Phase.RUNNING, "record_step")
        if verdict not in (None, "success", "failure"):
            raise ValueError(f"verdict {verdict!r} does not end a stored step; give 'success', 'failure' or None")
        self.n_steps += 1
        if verdict is not None:
            return StepOutcome(float(verdict == "success"), True, False)
        terminated = bool(success)
        return StepOutcome(float(terminated), terminated, not terminated and self.n_steps >= self.max_episode_steps)

    def finish(self) -> None:
        """The episode ended (or was abandoned): hold and wait for the next one."""
        self.phase, self.n_steps = Phase.WAITING, 0

    def _expect(self, phase: Phase, what: str) -> None:
        if self.phase is not phase:
            raise RuntimeError(f"{what}() needs phase {phase.value}, the episode is {self.phase.value}")
