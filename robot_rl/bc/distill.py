"""Distillation back (PLD): a new base cloned from an RL run's successful episodes (`robot-rl bc train --from-run`).

    store = successful_episodes("runs/pick_dsrl")     # a MemoryEpisodeStore of the run's successful episodes
    train_bc(BCTrainConfig(out="bc/distilled", policy=BCPolicyConfig(kind="flow")), store=store)

The run's episode store (`<run>/episodes`) keeps what the robot executed at every step (`keys.ACTION`: base plus
residual, the steered base's action, or a person's during a take-over), so cloning its successful episodes gives a
base that acts as the RL run did when it succeeded -- one network again, with no residual or latent agent behind
it. Warm-up and evaluation episodes are not told apart from the others: every successful episode counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.errors import UsageError

RUN_EPISODES = "episodes"  # <run>/episodes: every online episode of a run (robot_rl.learner.core.EPISODES_DIR)


def successful_episodes(run_dir: str | Path) -> MemoryEpisodeStore:
    """The successful episodes of a run (an episode succeeded when any of its steps is marked `success`), with
    their observations and executed actions, in a store `train_bc` clones; the run store's meta (task, obs mode)
    comes along. Refuses (UsageError) a directory without episodes, or a run without a successful one."""
    from robot_rl.data.store import EpisodeStore
    from robot_rl.learner.episodes import is_observation_key

    path = Path(run_dir) / RUN_EPISODES
    if not path.is_dir():
        raise UsageError(f"--from-run {run_dir}: no {RUN_EPISODES}/ there; give a run dir of robot-rl train")
    source = EpisodeStore.open(path, mode="r")
    kept = [k for k in source.keys if is_observation_key(k)] + [keys.ACTION, keys.SUCCESS]
    store = MemoryEpisodeStore({**source.meta, "distilled_from": str(run_dir)})
    for episode in source.iter_episodes():
        if np.any(episode[keys.SUCCESS]):
            store.add_episode({k: episode[k] for k in kept})
    if store.n_episodes == 0:
        raise UsageError(
            f"--from-run {run_dir}: none of its {source.n_episodes} episodes succeeded; there is nothing to distil"
        )
    store.path = f"{path} ({store.n_episodes} of {source.n_episodes} episodes: the successful ones)"
    return store


__all__ = ["successful_episodes"]
