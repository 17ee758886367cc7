"""A training process killed with SIGKILL loses no completed episode, and --resume continues from its data."""

from __future__ import annotations

import numpy as np
from trainproc import kill_train_when

from robot_rl.data.store import EpisodeStore
from robot_rl.training.config import config_for_resume
from robot_rl.training.loop import train


def _episodes(path) -> int:
    try:
        return EpisodeStore.open(path, mode="r").n_episodes
    except Exception:  # not created yet
        return 0


def test_killed_learner_loses_no_completed_episode_and_resume_continues_from_all_of_them(tmp_path):
    out = tmp_path / "run"
    cmd = [
        "--env-id",
        "Pendulum-v1",
        "--max-episode-steps",
        "50",
        "--steps",
        "100000",
        "--warmup-steps",
        "50",
        "--checkpoint-every",
        "100",
        "--eval-every",
        "100000",
        "--eval-episodes",
        "1",
        "--no-wandb",
        "--no-progress-bar",
        "--hidden-dims",
        "16",
        "16",
        "--batch-size",
        "16",
        "--utd",
        "1",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    kill_train_when(cmd, lambda: _episodes(out / "episodes") >= 5)  # checkpoints at episodes 2 and 4; 5 is after
    before = EpisodeStore.open(out / "episodes", mode="r")
    n_before = before.n_episodes
    actions_before = [before.get_episode(i)["action"] for i in range(n_before)]
    latest = (out / "checkpoints" / "latest").read_text().strip()
    assert int(latest.split("_")[1]) <= n_before * 50  # episodes past the last checkpoint are on disk too

    result = train(config_for_resume(out, {"steps": (n_before + 2) * 50}))
    after = EpisodeStore.open(out / "episodes", mode="r")
    assert (result.progress.episodes, after.n_episodes) == (n_before + 2, n_before + 2)
    assert result.progress.env_steps == after.n_steps == (n_before + 2) * 50
    for i, action in enumerate(actions_before):  # what was on disk before the kill is untouched
        np.testing.assert_array_equal(after.get_episode(i)["action"], action)
