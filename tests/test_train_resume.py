"""`robot-rl train --resume` on damaged and unfinished runs, and with options: damaged checkpoints are skipped in
one line, a run killed before its first checkpoint restarts keeping its episodes, fixed options are refused before
anything is written, changeable ones are applied and recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from trainproc import kill_train_when

from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.training.cli_args import replace_nested
from robot_rl.training.config import TrainConfig, config_for_resume
from robot_rl.training.loop import train

# Pendulum, 50-step episodes, a tiny learner: 200 env steps take a few seconds on one busy core
ARGS = [
    "--env-id",
    "Pendulum-v1",
    "--max-episode-steps",
    "50",
    "--warmup-steps",
    "50",
    "--eval-every",
    "100000",
    "--eval-episodes",
    "1",
    "--video-episodes",
    "0",
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
]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished 200-step run with checkpoints step_100 and step_200 (copy it before changing it)."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", *ARGS, "--steps", "200", "--checkpoint-every", "100", "--out", str(out)]) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _actions(store_path: Path) -> list[np.ndarray]:
    store = EpisodeStore.open(store_path, mode="r")
    return [store.get_episode(i)["action"] for i in range(store.n_episodes)]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_newest_checkpoint_is_reported_in_one_line_and_the_previous_one_resumed(
    base_run, tmp_path, capsys, damage
):
    run = _copy(base_run, tmp_path)
    weights = run / "checkpoints" / "step_200" / "agent" / "agent.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    else:
        del data[len(data) // 2 :]
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    result = train(config_for_resume(run, {"steps": 300}))
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if "step_200 is" in line]
    kind = "corrupt (agent/agent.safetensors checksum mismatch)" if damage == "flip" else "truncated (agent/agent"
    assert len(skipped) == 1 and skipped[0].startswith(f"[train] checkpoint step_200 is {kind}")
    assert skipped[0].endswith("; using step_100")
    assert f"resumed from {run / 'checkpoints' / 'step_100'}: 200 env steps, 4 episodes" in out
    assert (result.progress.env_steps, result.progress.episodes) == (300, 6)
    assert result.checkpoint.name == "step_300"


def test_a_run_killed_before_its_first_checkpoint_restarts_keeping_its_episodes(tmp_path, capsys):
    run = tmp_path / "run"
    kill_train_when(
        [*ARGS, "--steps", "100000", "--checkpoint-every", "100000", "--out", str(run)],
        lambda: (run / "episodes" / "zarr.json").is_file() and EpisodeStore.open(run / "episodes").n_episodes >= 2,
    )
    assert not list((run / "checkpoints").glob("step_*"))
    before = _actions(run / "episodes")
    config_before = (run / "train_config.json").read_bytes()

    capsys.readouterr()
    assert main(["train", *ARGS, "--steps", "300", "--out", str(run)]) == 2  # a fresh run there: refused, one line
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"--resume {run}" in err
    assert (run / "train_config.json").read_bytes() == config_before

    steps = len(before) * 50 + 100
    assert main(["train", "--resume", str(run), "--steps", str(steps)]) == 0  # the command the message gave
    assert "has no checkpoint (stopped before its first): restarting from step 0" in capsys.readouterr().out
    after = _actions(run / "episodes")
    assert len(after) == len(before) + 2
    for old, new in zip(before, after):  # the episodes recorded before the kill are kept as they were
        np.testing.assert_array_equal(old, new)
    progress = json.loads((run / "checkpoints" / f"step_{steps}" / "progress.json").read_text())
    assert (progress["env_steps"], progress["episodes"]) == (steps, len(before) + 2)


@pytest.mark.parametrize(
    "option",
    [
        ["--task", "peg_insert"],
        ["--obs", "pixels"],
        ["--hidden-dims", "8"],
        ["--env-id", "MountainCarContinuous-v0"],
        ["--seed", "3"],
    ],
)
def test_a_fixed_option_on_resume_is_refused_in_one_line_before_anything_is_written(base_run, tmp_path, capsys, option):
    run = _copy(base_run, tmp_path)
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run), *option, "--steps", "400"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"robot-rl: error: cannot change on resume: {option[0]} was ")
    assert f"given {' '.join(option[1:])}" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files  # train_config.json included
    if option[0] == "--task":  # a plain resume afterwards still works (once suffices: nothing was written)
        assert main(["train", "--resume", str(run), "--steps", "250"]) == 0


def test_changeable_options_on_resume_are_applied_and_recorded(base_run, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    assert (
        main(
            [
                "train",
                "--resume",
                str(run),
                "--steps",
                "300",
                "--batch-size",
                "64",
                "--actor-lr",
                "5e-4",
                "--checkpoint-every",
                "50",
            ]
        )
        == 0
    )
    assert "resuming with batch_size 16 -> 64, actor_lr 0.001 -> 0.0005" in capsys.readouterr().out
    recorded = TrainConfig.from_json(run / "train_config.json")
    assert (recorded.agent.batch_size, recorded.agent.actor_lr, recorded.checkpoint_every) == (64, 5e-4, 50)
    assert recorded.agent.hidden_dims == (16, 16) and recorded.steps == 300  # untyped options keep the record
    ckpt = run / "checkpoints" / "step_300"
    agent_cfg = json.loads((ckpt / "agent" / "config.json").read_text())["agent_config"]
    assert (agent_cfg["batch_size"], agent_cfg["actor_lr"]) == (64, 5e-4)  # what the updates read
    optim = json.loads((ckpt / "agent" / "agent_state.json").read_text())["optim"]
    assert [g["lr"] for g in optim["actor"]["param_groups"]] == [5e-4]  # the optimiser stepped with it
    assert [g["lr"] for g in optim["critic"]["param_groups"]] == [1e-3]  # the untyped one kept
    assert TrainConfig.from_json(ckpt / "train_config.json") == replace_nested(recorded, {})
