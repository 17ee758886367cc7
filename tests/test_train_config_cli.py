"""TrainConfig and the dataclass -> argparse bridge: one parser, typed options, help from field comments."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from robot_rl.errors import UsageError
from robot_rl.training.cli_args import add_dataclass_args, field_comments, from_dict, given_overrides, replace_nested
from robot_rl.training.config import TrainConfig, config_for_resume


@dataclass
class _Inner:
    lr: float = 3e-4  # learning rate
    dims: tuple[int, ...] = (64, 64)  # hidden widths
    steps: int = 7  # collides with the outer `steps`


@dataclass
class _Outer:
    steps: int = 100  # env steps
    mode: Literal["a", "b"] = "a"  # which mode
    flag: bool = True  # a switch
    out: str | None = None  # where
    inner: _Inner = field(default_factory=_Inner)  # nested config


def _parse(cls, argv, aliases=None):
    parser = argparse.ArgumentParser(prog="x")
    add_dataclass_args(parser, cls, aliases=aliases)
    return given_overrides(parser.parse_args(argv), cls)


def test_only_the_options_the_user_typed_become_overrides():
    assert _parse(_Outer, []) == {}
    got = _parse(_Outer, ["--steps", "5", "--no-flag", "--mode", "b", "--lr", "0.01", "--dims", "8", "16"])
    assert got == {"steps": 5, "flag": False, "mode": "b", "inner": {"lr": 0.01, "dims": (8, 16)}}


def test_a_nested_field_whose_name_collides_gets_its_parent_as_prefix():
    got = _parse(_Outer, ["--steps", "1", "--inner-steps", "2"])
    assert got == {"steps": 1, "inner": {"steps": 2}}


def test_replace_nested_applies_overrides_and_keeps_other_defaults():
    cfg = replace_nested(_Outer(), {"steps": 3, "inner": {"lr": 0.5}})
    assert (cfg.steps, cfg.inner.lr, cfg.inner.dims, cfg.mode) == (3, 0.5, (64, 64), "a")


def test_a_literal_field_refuses_a_value_outside_its_choices(capsys):
    with pytest.raises(SystemExit):
        _parse(_Outer, ["--mode", "c"])
    assert "invalid choice: 'c' (choose from" in capsys.readouterr().err


def test_help_text_comes_from_the_field_comments():
    assert field_comments(_Outer) == {
        "steps": "env steps",
        "mode": "which mode",
        "flag": "a switch",
        "out": "where",
        "inner": "nested config",
    }
    parser = argparse.ArgumentParser(prog="x")
    add_dataclass_args(parser, TrainConfig)
    help_text = parser.format_help()
    assert "--demo-fraction DEMO_FRACTION" in help_text and "fraction of each batch drawn from the demos" in help_text
    assert "--wandb, --no-wandb" in help_text
    options = help_text[help_text.index("AgentConfig options") :]
    n_step_help = options[options.index("--n-step N_STEP") : options.index("--actor-update-every")]
    assert "(default: 3)" in n_step_help  # the run's tuned agent default, not AgentConfig's own 1


def test_utd_is_an_alias_of_the_agents_utd_ratio():
    assert _parse(TrainConfig, ["--utd", "8"], aliases={"utd_ratio": ("--utd",)}) == {"agent": {"utd_ratio": 8}}


def test_train_config_round_trips_through_json(tmp_path):
    cfg = replace_nested(TrainConfig(), {"steps": 123, "env_id": "Pendulum-v1", "agent": {"hidden_dims": (32, 32)}})
    cfg.save(tmp_path / "c.json")
    back = TrainConfig.from_json(tmp_path / "c.json")
    assert back == cfg
    assert back.agent.hidden_dims == (32, 32)


def test_an_unknown_field_in_a_saved_config_is_refused_with_the_valid_names(tmp_path):
    data = TrainConfig().to_dict() | {"stepz": 5}
    with pytest.raises(ValueError, match=r"TrainConfig has no fields \['stepz'\]; valid fields: .*'steps'"):
        from_dict(TrainConfig, data)


def test_config_checks_name_the_bad_value():
    with pytest.raises(ValueError, match=r"demo_fraction must be in \[0, 1\), got 1.5"):
        TrainConfig(demo_fraction=1.5)
    with pytest.raises(ValueError, match="eval_episodes must be >= 1, got 0"):
        TrainConfig(eval_episodes=0)


def test_resuming_takes_the_saved_config_and_applies_only_what_was_typed(tmp_path):
    saved = replace_nested(TrainConfig(), {"steps": 1000, "seed": 7, "agent": {"batch_size": 64}})
    saved.save(tmp_path / "train_config.json")
    cfg = config_for_resume(tmp_path, {"steps": 3000})
    assert (cfg.steps, cfg.seed, cfg.agent.batch_size) == (3000, 7, 64)
    assert cfg.resume == str(tmp_path) and cfg.out == str(tmp_path)
    with pytest.raises(UsageError, match="no train_config.json there"):
        config_for_resume(tmp_path / "nothing", {})
    json.loads((tmp_path / "train_config.json").read_text())  # still valid JSON, untouched


def test_resuming_refuses_fixed_options_naming_each_and_applies_changeable_ones(tmp_path):
    saved = replace_nested(TrainConfig(), {"task": "pick_cube", "agent": {"hidden_dims": (64, 64)}})
    saved.save(tmp_path / "train_config.json")
    before = (tmp_path / "train_config.json").read_bytes()
    with pytest.raises(
        UsageError,
        match=r"^cannot change on resume: --task was pick_cube, given peg_insert; "
        r"--hidden-dims was 64 64, given 32 32 \(the saved agent",
    ):
        config_for_resume(tmp_path, {"task": "peg_insert", "agent": {"hidden_dims": (32, 32)}})
    with pytest.raises(UsageError, match="--obs was state, given pixels"):
        config_for_resume(tmp_path, {"obs": "pixels"})
    with pytest.raises(UsageError, match="--out .* differs from --resume"):
        config_for_resume(tmp_path, {"out": str(tmp_path / "other")})
    assert (tmp_path / "train_config.json").read_bytes() == before
    same = config_for_resume(tmp_path, {"task": "pick_cube", "agent": {"hidden_dims": (64, 64)}})  # unchanged: fine
    assert same.agent.hidden_dims == (64, 64)
    cfg = config_for_resume(tmp_path, {"agent": {"batch_size": 64, "actor_lr": 5e-4}, "eval_every": 7})
    assert (cfg.agent.batch_size, cfg.agent.actor_lr, cfg.eval_every) == (64, 5e-4, 7)


def test_the_pixel_recipe_adds_its_bc_term_unless_a_weight_is_typed_and_zero_turns_it_off():
    from robot_rl.agents.config import PIXEL_BC_WEIGHT, AgentConfig, with_recipe
    from robot_rl.cli import build_parser

    def agent_cfg(argv: list[str]) -> AgentConfig:
        overrides = given_overrides(build_parser().parse_args(["train", *argv]), TrainConfig)
        return replace_nested(TrainConfig(), overrides).agent

    recipe, note = with_recipe(agent_cfg(["--task", "pick_cube"]), has_images=True)
    assert (recipe.encoder, recipe.bc_weight) == ("resnet10", PIXEL_BC_WEIGHT) and "bc_weight 1.0" in note
    off, note = with_recipe(agent_cfg(["--bc-weight", "0"]), has_images=True)
    assert off.bc_weight == 0.0 and "bc_weight" not in note  # typed 0 is kept: the term is off
    assert with_recipe(agent_cfg(["--bc-weight", "2.5"]), has_images=True)[0].bc_weight == 2.5
    assert recipe.critic_loss in (None, "mse")  # the pixel recipe keeps the regression critic


def test_the_state_recipe_adds_its_bc_term_and_hl_gauss_critic_unless_they_are_typed():
    from robot_rl.agents.config import STATE_BC_WEIGHT, STATE_CRITIC_LOSS, with_recipe
    from robot_rl.cli import build_parser

    def agent_cfg(argv: list[str]):
        overrides = given_overrides(build_parser().parse_args(["train", *argv]), TrainConfig)
        return replace_nested(TrainConfig(), overrides).agent

    recipe, note = with_recipe(agent_cfg([]), has_images=False)
    assert (recipe.bc_weight, recipe.critic_loss) == (STATE_BC_WEIGHT, STATE_CRITIC_LOSS) == (5.0, "hl_gauss")
    assert note.startswith("state observations:") and "bc_weight 5" in note and "hl_gauss" in note
    typed, note = with_recipe(agent_cfg(["--bc-weight", "0", "--critic-loss", "mse"]), has_images=False)
    assert (typed.bc_weight, typed.critic_loss, note) == (0.0, "mse", "")  # typed values are kept, nothing to say


def test_the_recipes_hold_the_gaussian_entropy_for_plain_agents_only_and_keep_typed_values():
    from robot_rl.agents.config import with_recipe
    from robot_rl.cli import build_parser

    def agent_cfg(argv: list[str]):
        overrides = given_overrides(build_parser().parse_args(["train", *argv]), TrainConfig)
        return replace_nested(TrainConfig(), overrides).agent

    plain, note = with_recipe(agent_cfg([]), has_images=False, arm_dims=4)
    assert (plain.entropy_measure, plain.target_entropy_final, plain.actor_ema) == ("gaussian", -12.0, 0.005)
    assert "Gaussian's entropy" in note and "moving to -12" in note and "actor_ema 0.005" in note
    residual, _ = with_recipe(agent_cfg([]), has_images=False)  # no arm_dims: residual / steering agents
    assert (residual.entropy_measure, residual.target_entropy_final, residual.actor_ema) == (None, None, None)
    pixels, note = with_recipe(agent_cfg([]), has_images=True, arm_dims=4)  # plain SAC from pixels: the same
    assert (pixels.entropy_measure, pixels.target_entropy_final, pixels.actor_ema) == ("gaussian", -12.0, 0.005)
    assert "Gaussian's entropy" in note and "actor_ema 0.005" in note and "ResNet-10" in note
    pixel_residual, _ = with_recipe(agent_cfg([]), has_images=True)
    assert (pixel_residual.entropy_measure, pixel_residual.target_entropy_final, pixel_residual.actor_ema) == (
        (None, None, None)
    )
    off, _ = with_recipe(agent_cfg(["--actor-ema", "0"]), has_images=False, arm_dims=4)
    assert off.actor_ema == 0.0
    typed, _ = with_recipe(
        agent_cfg(["--entropy-measure", "action", "--target-entropy-final", "-5"]), has_images=False, arm_dims=4
    )
    assert (typed.entropy_measure, typed.target_entropy_final) == ("action", -5.0)


def test_the_pixel_recipe_adds_the_success_pose_head_for_plain_agents_on_success_rewards_only():
    from robot_rl.agents.config import PIXEL_SUCCESS_POSE, with_recipe
    from robot_rl.cli import build_parser

    def agent_cfg(argv: list[str]):
        overrides = given_overrides(build_parser().parse_args(["train", *argv]), TrainConfig)
        return replace_nested(TrainConfig(), overrides).agent

    pixels, note = with_recipe(agent_cfg([]), has_images=True, arm_dims=4)
    assert (pixels.success_pose_weight, pixels.success_pose_symlog) == PIXEL_SUCCESS_POSE == (0.02, 0.002)
    assert "success_pose_weight 0.02" in note
    for cfg in (
        with_recipe(agent_cfg([]), has_images=False, arm_dims=4)[0],  # state: nothing to teach necks
        with_recipe(agent_cfg([]), has_images=True)[0],  # residual / steering: not measured
        with_recipe(agent_cfg([]), has_images=True, success_reward=False, arm_dims=4)[0],  # no success to label
    ):
        assert not cfg.success_pose_weight
    off, note = with_recipe(agent_cfg(["--success-pose-weight", "0"]), has_images=True, arm_dims=4)
    assert off.success_pose_weight == 0.0 and "success_pose" not in note
    typed = with_recipe(agent_cfg(["--success-pose-weight", "0.1"]), has_images=True, arm_dims=4)[0]
    assert (typed.success_pose_weight, typed.success_pose_symlog) == (0.1, 0.002)  # the scale still the recipe's


def test_scripted_demos_default_to_the_tasks_count_from_pixels_and_a_typed_count_wins():
    def count(**kw) -> int:
        return TrainConfig(**kw).scripted_demo_count()

    assert count(task="peg_insert", obs="pixels") == count(task="pick_cube", obs="pixels") == 40  # robot_rl.cell
    assert count(task="peg_insert", obs="state") == count(task="pick_cube", obs="state") == 20
    assert count(task="peg_insert", obs="pixels", scripted_demos=5) == 5
    assert count(task="peg_insert", obs="pixels", scripted_demos=0) == 0
    assert count(task=None, env_id="Pendulum-v1", obs="pixels") == 20  # not a sim task: recorded by nobody
    typed = from_dict(TrainConfig, {"task": "peg_insert", "obs": "pixels", "scripted_demos": 12})
    assert typed.scripted_demo_count() == 12
