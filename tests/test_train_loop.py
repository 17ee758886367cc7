"""The training loop end to end on real envs: artifacts, wandb offline files, exact resume, `robot-rl eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from tiny_train import pick_cube_config

from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.errors import UsageError
from robot_rl.training.cli_args import replace_nested
from robot_rl.training.config import TrainConfig, config_for_resume
from robot_rl.training.loop import train


def _pick_cube_cfg(out: Path, steps: int) -> TrainConfig:
    return pick_cube_config(out, steps)


def _agent_tensors(ckpt: Path) -> dict[str, np.ndarray]:
    files = sorted((ckpt / "agent").glob("*.safetensors"))
    assert files, f"no safetensors in {ckpt / 'agent'}"
    return {f"{f.name}/{k}": v for f in files for k, v in load_file(f).items()}


def test_pendulum_trains_through_env_id_with_every_artifact_and_offline_wandb(tmp_path):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--env-id",
            "Pendulum-v1",
            "--max-episode-steps",
            "100",
            "--steps",
            "300",
            "--warmup-steps",
            "100",
            "--eval-every",
            "150",
            "--eval-episodes",
            "2",
            "--checkpoint-every",
            "150",
            "--log-every",
            "50",
            "--wandb-mode",
            "offline",
            "--no-progress-bar",
            "--hidden-dims",
            "32",
            "32",
            "--batch-size",
            "32",
            "--utd",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["env_steps"] for e in evals] == [0, 150, 300]
    assert [e["updates"] for e in evals] == [0, 50, 200]  # one per env step once episode 1 (steps 1-100) is in replay
    assert all(e["return_mean"] < 0 and "success_rate" not in e for e in evals)  # Pendulum: costs, no success signal
    assert (out / "curve.png").stat().st_size > 10_000
    store = EpisodeStore.open(out / "episodes")
    assert (store.n_episodes, store.n_steps) == (3, 300)
    assert (out / "checkpoints" / "latest").read_text().strip() == "step_300"
    saved = TrainConfig.from_json(out / "checkpoints" / "step_300" / "train_config.json")
    assert saved.env_id == "Pendulum-v1" and saved.agent.hidden_dims == (32, 32) and saved.agent.utd_ratio == 1
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb")), f"no offline wandb run files under {out / 'wandb'}"


def test_a_fresh_run_refuses_a_run_dir_that_already_holds_episodes(tmp_path):
    cfg = replace_nested(_pick_cube_cfg(tmp_path / "run", steps=50), {"scripted_demos": 0, "warmup_steps": 50})
    train(cfg)
    with pytest.raises(
        UsageError, match=r"already holds a run \(1 episodes\): continue it with `robot-rl train --resume"
    ):
        train(cfg)


@pytest.fixture(scope="module")
def straight_and_resumed(tmp_path_factory):
    """pick_cube trained 200 steps straight, and 100 + resumed to 200 (checkpoints every 100, learning from step 50)."""
    root = tmp_path_factory.mktemp("resume")
    straight = train(_pick_cube_cfg(root / "straight", steps=200))
    first = train(_pick_cube_cfg(root / "split", steps=100))
    resumed = train(config_for_resume(root / "split", {"steps": 200}))
    return straight, first, resumed


def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(straight_and_resumed):
    straight, first, resumed = straight_and_resumed
    assert (first.progress.env_steps, first.progress.episodes) == (100, 2)
    assert (
        (resumed.progress.env_steps, resumed.progress.episodes)
        == (straight.progress.env_steps, straight.progress.episodes)
        == (200, 4)
    )
    a, b = EpisodeStore.open(straight.run_dir / "episodes"), EpisodeStore.open(resumed.run_dir / "episodes")
    assert a.n_steps == b.n_steps == 200
    for i in range(a.n_episodes):  # same data, bit for bit: the online policy acted the same after the resume
        np.testing.assert_array_equal(a.get_episode(i)["action"], b.get_episode(i)["action"])
        np.testing.assert_array_equal(a.get_episode(i)["state"], b.get_episode(i)["state"])
    ta, tb = _agent_tensors(straight.checkpoint), _agent_tensors(resumed.checkpoint)
    assert ta.keys() == tb.keys()
    for k in ta:
        np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)
    by_step = {e["env_steps"]: e for e in resumed.evals}
    assert [e["env_steps"] for e in straight.evals] == [e["env_steps"] for e in resumed.evals] == [0, 100, 200]
    for e in straight.evals:  # the same curve, measured by the same policies
        assert by_step[e["env_steps"]]["return_mean"] == e["return_mean"]
        assert by_step[e["env_steps"]]["updates"] == e["updates"]


def test_resuming_a_finished_run_without_more_steps_changes_nothing(straight_and_resumed, capsys):
    _, _, resumed = straight_and_resumed
    again = train(config_for_resume(resumed.run_dir, {}))
    assert again.progress.env_steps == 200
    assert "already has 200 of 200 env steps" in capsys.readouterr().out


def test_eval_command_reports_the_checkpoint_success_rate_and_writes_a_video(straight_and_resumed, tmp_path, capsys):
    straight, _, _ = straight_and_resumed
    rc = main(["eval", str(straight.run_dir), "--episodes", "2", "--video-dir", str(tmp_path), "--video-episodes", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "success rate" in out and "2 episodes: return" in out
    assert (tmp_path / "eval_step_200.mp4").stat().st_size > 1000
    recorded = straight.evals[-1]  # same seeds as the run's own last evaluation, so the same numbers
    assert f"return {recorded['return_mean']:.2f}" in out


def test_demos_recorded_in_another_obs_mode_are_refused_with_both_shapes(tmp_path):
    from robot_rl.data.demos import DemoConfig, record_scripted_demos

    record_scripted_demos(
        DemoConfig(task="pick_cube", episodes=1, out=tmp_path / "pixel_demos", obs_mode="pixels", progress=False)
    )
    cfg = replace_nested(_pick_cube_cfg(tmp_path / "run", steps=50), {"demos": str(tmp_path / "pixel_demos")})
    with pytest.raises(ValueError, match=r"has observation shapes \{'state': \[18\]\}, this env \{'state': \[28\]\}"):
        train(cfg)
