"""The simulated operator in the in-process loop (`robot-rl train --operator`), and learning from its corrections.

Per env step (after warm-up): the sim task's scripted expert and a `ScriptedOperator` watch the task's ground
truth (`distance_to_done_m`); when the policy strays the operator takes over through the same `Arbiter` a person
with a teleop device goes through, within its per-episode budget: the loop's acting core
(robot_rl.acting.core.Acting) holds `SimOperator.arbiter` and is handed `SimOperator.command` every step. The step
records the executed action, the policy's proposal (`policy_action`) and `is_intervention`.

Learning from corrections (HIL-SERL, RLIF) is the learner core's, shared with the learner node:
robot_rl.learner.corrections.

The operator decides on each new state as soon as the env returns it (`observe`), so the loop knows whether the
next step is a take-over while it still records the step that led there.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop import Arbiter, ArbiterConfig, OperatorConfig, ScriptedOperator, distance_to_done_m
from robot_rl.teleop.arbiter import verdict_of
from robot_rl.teleop.operator import LOST_SLIP_M


class SimOperator:
    """Expert + scripted operator for one sim env, and the arbiter its commands go through. `reset` at every episode
    start, then per state `observe(active)`; the acting core (which resets `arbiter`) reads `command` every step."""

    def __init__(self, env: gym.Env, cfg: OperatorConfig):
        from robot_rl_sim.experts import make_expert  # the sim (MuJoCo) only when an operator is asked for

        self.env, self.cfg = env, cfg
        self.task = env.unwrapped.task
        use_rotation = bool(self.task.use_rotation)
        self.expert = make_expert(env)  # noise-free: the operator corrects, it does not explore
        self.operator = ScriptedOperator(cfg, use_rotation=use_rotation)
        action_dim = int(np.prod(env.action_space.shape))
        self.arbiter = Arbiter(ArbiterConfig(use_rotation=use_rotation), action_dim=action_dim)  # for the acting core
        self._cmd: TeleopCommand | None = None

    def reset(self) -> None:
        """A new episode (after env.reset): the expert and the operator forget the last one (the arbiter is reset
        with the acting core that holds it)."""
        self.expert.reset()
        self.operator.reset()
        self._cmd = None

    def observe(self, active: bool) -> bool:
        """The env shows a new state: the expert acts on it (always, so its phases stay current); an `active`
        operator decides whether it drives the next step. True when that step is a new take-over."""
        expert_action = self.expert.act()
        if not active:
            self._cmd = None
            return False
        distance = distance_to_done_m(self.task.name, self.task.object_state())
        self._cmd = self.operator.step(distance, expert_action, lost=self.lost())
        return "take_over" in self._cmd.events

    def lost(self) -> bool:
        """Whether the episode can no longer succeed as a person watching would see it: the held object pushed
        `LOST_SLIP_M` or more into the hand (peg_insert; tasks that start with nothing in the hand never are)."""
        slip = self.task.grasp_slip_m()
        return slip is not None and slip >= LOST_SLIP_M

    @property
    def verdict(self) -> str | None:
        """The verdict of the operator's latest command ("failure" for a lost episode with `end_lost`), or None."""
        return verdict_of(self._cmd)

    @property
    def command(self) -> TeleopCommand | None:
        """The operator's command for the next step (None: it is not active), for the acting core's arbiter."""
        return self._cmd


def make_sim_operator(
    env: gym.Env,
    env_id: str,
    patience_steps: int,
    takeover_steps: int,
    max_interventions: int,
    max_fraction: float,
    max_episode_steps: int | None,
    end_lost: bool = True,
) -> SimOperator:
    """The operator for a sim task env; a clear error for any other env."""
    task = getattr(env.unwrapped, "task", None)
    if task is None or not hasattr(task, "object_state"):
        raise ValueError(
            f"--operator needs a sim task (its scripted operator reads the simulator's ground truth); "
            f"{env_id} is not one: use --task pick_cube or peg_insert, or drop --operator"
        )
    limit = min(n for n in (max_episode_steps, task.max_episode_steps) if n)
    cfg = OperatorConfig(
        patience_steps=patience_steps,
        takeover_steps=takeover_steps,
        max_interventions=max_interventions,
        max_fraction=max_fraction,
        max_episode_steps=limit,
        end_lost=end_lost,
    )
    return SimOperator(env, cfg)


def intervention_replay_rows(steps: int, episode_steps: int, online_capacity: int) -> int:
    """Rows the demo replay reserves for intervened transitions: two per step of the run at most (a one-step
    take-over takes two rows), never more than the online replay holds (beyond that its oldest rows are reused)."""
    return min(2 * (steps + episode_steps), online_capacity)
