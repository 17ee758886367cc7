"""Tiny in-process training runs of a few seconds, for tests: `robot-rl train` options (one critic step per env step,
32-wide nets, no evaluation, video or checkpoint before step 1000, no wandb, no progress bar) and a TrainConfig."""

from __future__ import annotations

from pathlib import Path

from robot_rl.training.cli_args import replace_nested
from robot_rl.training.config import TrainConfig

TINY_AGENT = {"hidden_dims": (32, 32), "batch_size": 32, "utd_ratio": 1}

TINY_LEARNER_ARGS = [
    "--utd",
    "1",
    "--hidden-dims",
    "32",
    "32",
    "--batch-size",
    "32",
    "--eval-every",
    "1000",
    "--eval-episodes",
    "3",
    "--video-episodes",
    "0",
    "--checkpoint-every",
    "1000",
    "--no-wandb",
    "--no-progress-bar",
]


def pick_cube_config(out: Path, steps: int, **overrides) -> TrainConfig:
    """pick_cube from state, 50-step episodes, 3 scripted demos, a tiny learner: a few seconds of CPU."""
    fields = {
        "task": "pick_cube",
        "obs": "state",
        "max_episode_steps": 50,
        "scripted_demos": 3,
        "out": str(out),
        "steps": steps,
        "warmup_steps": 50,
        "eval_every": 100,
        "eval_episodes": 2,
        "video_episodes": 0,
        "checkpoint_every": 100,
        "log_every": 50,
        "wandb": False,
        "progress_bar": False,
        "agent": TINY_AGENT,
    }
    return replace_nested(TrainConfig(), {**fields, **overrides})
