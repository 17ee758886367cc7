"""The simulated operator in the in-process loop (`robot-rl train --operator`), and learning from its corrections.

Per env step (after warm-up): the sim task's scripted expert and a `ScriptedOperator` watch the task's ground
truth (`progress_distance_m`); when the policy strays the operator takes over through the same `Arbiter` a person
with a teleop device goes through, within its per-episode budget: the loop's acting core
(robot_rl.actor.acting.Acting) holds `SimOperator.arbiter` and is handed `SimOperator.command` every step. The step
records the executed action, the policy's proposal (`policy_action`) and `is_intervention`.

Learning from corrections (HIL-SERL): at each episode end the intervened transitions also go to the demo replay
(`add_interventions`), which the sampler then mixes into every batch. They are re-read from the online episode
store, so a resumed run rebuilds that replay exactly. RLIF-style: `intervention_penalty` is added to the reward of
the policy's step after which the operator took over (the step whose outcome made it step in).

The operator decides on each new state as soon as the env returns it (`observe`), so the loop knows whether the
next step is a take-over while it still records the step that led there.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from robot_rl import keys
from robot_rl.interfaces import TeleopCommand
from robot_rl.replay import ReplayBuffer
from robot_rl.teleop import Arbiter, ArbiterConfig, OperatorConfig, ScriptedOperator, progress_distance_m


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
        distance = progress_distance_m(self.task.name, self.task.object_state())
        self._cmd = self.operator.step(distance, expert_action)
        return "take_over" in self._cmd.events

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
    )
    return SimOperator(env, cfg)


def intervention_segments(is_intervention: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end), ...] of the runs of True in a (T,) bool array (end exclusive)."""
    flags = np.concatenate([[False], np.asarray(is_intervention, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2])]


def add_interventions(replay: ReplayBuffer, episode: dict[str, np.ndarray]) -> int:
    """Add a stored episode's intervened transitions to `replay`, each take-over as its own trajectory; the count.

    A take-over that the episode outlives ends truncated, bootstrapping from the state it handed back; one that
    reaches the episode's end keeps the episode's flags (its last next observation is the last stored one, as
    `ReplayBuffer.add_episode` does).
    """
    n = len(episode[keys.ACTION])
    obs_keys = list(replay.spec)

    def obs_at(t: int) -> dict[str, np.ndarray]:
        return {k: episode[k][min(t, n - 1)] for k in obs_keys}

    base = episode.get(keys.BASE_ACTION)
    added = 0
    for start, end in intervention_segments(episode[keys.IS_INTERVENTION]):
        for t in range(start, end):
            last = t == end - 1
            terminated = bool(episode[keys.TERMINATED][t])
            truncated = bool(episode[keys.TRUNCATED][t]) or (last and not terminated)
            extras = {keys.IS_INTERVENTION: True}
            if base is not None:
                extras[keys.BASE_ACTION] = base[t]
            replay.add(
                obs_at(t),
                episode[keys.ACTION][t],
                float(episode[keys.REWARD][t]),
                obs_at(t + 1),
                terminated,
                truncated,
                **extras,
            )
            added += 1
    return added


def penalize_takeovers(episode: dict[str, np.ndarray], penalty: float) -> dict[str, np.ndarray]:
    """RLIF: the episode with `penalty` added to the reward of every policy step after which a person took over
    (is_intervention False at t, True at t + 1); the input is not changed. penalty 0 returns the episode itself."""
    if penalty == 0.0:
        return episode
    flags = np.asarray(episode[keys.IS_INTERVENTION], dtype=bool)
    led_to_takeover = np.zeros_like(flags)
    led_to_takeover[:-1] = ~flags[:-1] & flags[1:]
    if not led_to_takeover.any():
        return episode
    reward = np.asarray(episode[keys.REWARD]).copy()
    reward[led_to_takeover] += np.asarray(penalty, dtype=reward.dtype)
    return {**episode, keys.REWARD: reward}


def intervention_rate(episode: dict[str, np.ndarray]) -> float:
    """Intervened steps / steps of one episode."""
    flags = np.asarray(episode[keys.IS_INTERVENTION], dtype=bool)
    return float(flags.mean()) if flags.size else 0.0


def intervention_replay_rows(steps: int, episode_steps: int, online_capacity: int) -> int:
    """Rows the demo replay reserves for intervened transitions: two per step of the run at most (a one-step
    take-over takes two rows), never more than the online replay holds (beyond that its oldest rows are reused)."""
    return min(2 * (steps + episode_steps), online_capacity)
