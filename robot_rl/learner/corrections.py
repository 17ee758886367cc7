"""Learning from corrections, for both learner paths (the in-process loop's and the learner node's core).

HIL-SERL: at each episode end the intervened transitions also go to the demo replay (`add_interventions`), which the
sampler then mixes into every batch. They are re-read from the online episode store, so a resumed run rebuilds that
replay exactly. RLIF-style: `intervention_penalty` is added to the reward of the policy's step after which a
person or the scripted operator took over (the step whose outcome made it step in; `penalize_takeovers`).
Self-imitation (`successes_to_demos`, opt-in): an episode the policy finished successfully on its own goes to the
demo replay whole (`add_own_success`), where the BC term imitates it like a demonstration.
"""

from __future__ import annotations

import numpy as np

from robot_rl import keys
from robot_rl.replay import ReplayBuffer


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


def episode_succeeded(episode: dict[str, np.ndarray]) -> bool:
    """The episode's success label (the episode log's and self-imitation's): any step marked `success`, else an
    episode that terminated."""
    if keys.SUCCESS in episode:
        return bool(np.any(episode[keys.SUCCESS]))
    return bool(episode[keys.TERMINATED][-1])


def add_own_success(replay: ReplayBuffer, episode: dict[str, np.ndarray]) -> int:
    """Add an episode the policy succeeded in without a take-over to `replay` whole (self-imitation); the rows
    added (0 for a failure or an episode with a take-over: its corrections go in by `add_interventions`)."""
    flags = episode.get(keys.IS_INTERVENTION)
    if not episode_succeeded(episode) or (flags is not None and np.any(flags)):
        return 0
    replay.add_episode(episode)
    return len(episode[keys.ACTION])


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
