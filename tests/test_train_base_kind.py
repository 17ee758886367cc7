"""`robot-rl train --base-policy flow|mlp`: the run clones its own demos into a BC base (<run>/base), then RL on it;
the run records that base's path, so a resume (never retraining it), `robot-rl eval` and the actor load exactly it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tiny_train import TINY_LEARNER_ARGS

from robot_rl import keys
from robot_rl.bc import BCPolicyConfig, CallablePolicy, load_base_policy, make_bc_policy
from robot_rl.bc.steering import NoiseSteering
from robot_rl.bc.train import evaluate_base
from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.errors import RunError
from robot_rl.learner.checkpoint import find_checkpoint
from robot_rl.training.base_setup import is_base_kind, train_run_base
from robot_rl.training.config import TrainConfig

EPISODE_STEPS = 40
BASE_STEPS = 200  # BC gradient steps: seconds on a CPU


def _train_args(out, *extra: str) -> list[str]:
    """A tiny pick_cube run from state: 3 scripted demos, a 200-step BC base, 100 env steps."""
    run = f"train --task pick_cube --obs state --max-episode-steps {EPISODE_STEPS} --scripted-demos 3"
    short = f"--base-steps {BASE_STEPS} --steps 100 --warmup-steps 40 --critic-only-steps 20"
    return [*run.split(), *short.split(), *TINY_LEARNER_ARGS, "--threads", "1", "--out", str(out), *extra]


def _first_eval(out) -> dict:
    first = json.loads((out / "eval.jsonl").read_text().splitlines()[0])
    assert first["env_steps"] == 0
    return first


def _mtimes(path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(path.iterdir())}


def test_a_flow_kind_trains_the_base_into_the_run_which_resume_reuses_and_eval_loads(tmp_path, capsys):
    out = tmp_path / "run"
    base = out / "base"
    assert main(_train_args(out, "--base-policy", "flow")) == 0
    assert json.loads((base / "bc_policy.json").read_text())["bc_config"]["kind"] == "flow"
    bc_cfg = json.loads((base / "bc_train_config.json").read_text())
    assert (bc_cfg["steps"], bc_cfg["seed"], bc_cfg["demos"]) == (BASE_STEPS, 0, str(out / "demos"))
    assert EpisodeStore.open(out / "demos").n_episodes == 3  # the run's own scripted demos
    assert not (base / "bc_eval.json").exists()  # the base alone is not evaluated by default
    for config in (out / "train_config.json", find_checkpoint(out) / "train_config.json"):
        assert json.loads(config.read_text())["base_policy"] == str(base.resolve())
    assert "training a flow BC base on the 3 demos" in capsys.readouterr().out

    before, n_episodes = _mtimes(base), EpisodeStore.open(out / "episodes").n_episodes
    # the same command line again, with --resume: `--base-policy flow` is the base this run trained, not retrained
    assert main(["train", "--resume", str(out), "--steps", "140", "--base-policy", "flow"]) == 0
    resumed = capsys.readouterr().out
    assert "training a flow BC base" not in resumed and f"residual RL on the base policy {base.resolve()}" in resumed
    assert _mtimes(base) == before
    assert EpisodeStore.open(out / "episodes").n_episodes > n_episodes
    assert json.loads((out / "train_config.json").read_text())["base_policy"] == str(base.resolve())

    assert main(["train", "--resume", str(out), "--base-policy", "mlp"]) == 2  # another kind: another base
    assert "cannot change on resume: --base-policy was" in capsys.readouterr().err

    # a record still naming the kind (the run stopped before it recorded the path): the finished base is taken
    cfg = TrainConfig.from_json(out / "train_config.json")
    cfg.base_policy, said = "flow", []
    assert train_run_base(cfg, out, None, log=said.append) == str(base.resolve()) and "(not retrained)" in said[0]
    assert _mtimes(base) == before
    cfg.base_policy = "mlp"
    with pytest.raises(RunError, match="holds a flow base, --base-policy asks for mlp"):
        train_run_base(cfg, out, None)

    assert main(["eval", str(out), "--episodes", "2"]) == 0
    shutil.rmtree(base)
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "2"]) == 1  # eval loads that very base
    assert str(base) in capsys.readouterr().err


def test_an_untrained_residual_on_the_trained_mlp_base_first_evaluates_exactly_as_the_base_alone(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(out, "--base-policy", "mlp", "--base-eval-episodes", "3", "--steps", "50")) == 0
    alone = json.loads((out / "base" / "bc_eval.json").read_text())
    first = _first_eval(out)
    keys_compared = ("return_mean", "length_mean", "success_rate", "eval_episodes")
    assert [first[k] for k in keys_compared] == [alone[k] for k in keys_compared]
    again = evaluate_base(load_base_policy(out / "base"), "pick_cube", "state", 3, max_episode_steps=EPISODE_STEPS)
    assert (again.return_mean, again.length_mean) == (alone["return_mean"], alone["length_mean"])
    assert 0 < alone["return_mean"], alone  # a base that does something: the comparison can tell bases apart
    assert f"alone: success {alone['success_rate']:.0%}" in capsys.readouterr().out


def test_noise_steering_of_a_trained_flow_base_starts_at_that_base_from_zero_noise(tmp_path):
    out = tmp_path / "run"
    assert main(_train_args(out, "--base-policy", "flow", "--steer", "noise")) == 0
    assert EpisodeStore.open(out / "demos").n_episodes == 3  # recorded to train the base; no demo replay
    steering = NoiseSteering(load_base_policy(out / "base"), 1.5)
    zero = evaluate_base(
        CallablePolicy(
            lambda obs: steering.action(obs, np.zeros(steering.latent_dim)),
            reset=steering.reset,
            action_dim=steering.action_dim,
        ),
        "pick_cube",
        "state",
        episodes=3,
        max_episode_steps=EPISODE_STEPS,
    )
    first = _first_eval(out)
    assert (first["return_mean"], first["length_mean"]) == (zero.return_mean, zero.length_mean)
    config = json.loads((find_checkpoint(out) / "agent" / "config.json").read_text())
    assert config["action_dim"] == steering.latent_dim and "residual_config" not in config
    for ep in EpisodeStore.open(out / "episodes").iter_episodes():
        assert ep[keys.NOISE_ACTION].shape == (len(ep[keys.ACTION]), steering.latent_dim)
    assert main(["eval", str(out), "--episodes", "2"]) == 0


@pytest.mark.parametrize(
    "extra, complaint",
    [
        (["--base-policy", "mlp", "--steer", "noise"], "steers a flow base's initial noise; --base-policy mlp trains"),
        (["--base-policy", "flow", "--scripted-demos", "0"], "on this run's demos, and it has none: give --demos DIR"),
        (["--base-policy", "flwo"], "--base-policy flwo does not exist"),
    ],
)
def test_a_base_kind_without_demos_or_for_the_wrong_steering_is_refused_in_one_line(tmp_path, capsys, extra, complaint):
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(_train_args(out, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and complaint in err[0], err
    assert not out.exists()  # refused before anything is written


def test_an_existing_path_named_like_a_kind_is_that_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_base_kind("flow") and is_base_kind("mlp") and not is_base_kind("bc/flow") and not is_base_kind(None)
    make_bc_policy(BCPolicyConfig(hidden_dims=(8,)), {keys.STATE: [28]}, 4).save(tmp_path / "flow")
    assert not is_base_kind("flow") and is_base_kind("mlp")
    assert load_base_policy("flow").cfg.kind == "mlp"  # the directory, an MLP base saved under that name
