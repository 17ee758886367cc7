"""robot-rl train / eval / compare: train a policy in sim (or on any gymnasium env), evaluate a checkpoint,
compare runs.

The `train` options are generated from `robot_rl.training.config.TrainConfig` (agent options included),
so the dataclass is the one place a setting, its type, default and help live.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_rl.cli import checks
from robot_rl.errors import RunError, UsageError


def register(sub) -> None:
    from robot_rl.training.cli_args import add_dataclass_args
    from robot_rl.training.config import TrainConfig

    train = sub.add_parser(
        "train",
        help="train a policy (SAC/RLPD) in sim or on a gymnasium env",
        description="Train in-process: sim task (--task) or any gymnasium id (--env-id), with demos mixed into "
        "every batch. Writes <out>/eval.jsonl, curve.png, videos/, episodes/, checkpoints/. "
        "--resume <out> continues a run (options given with it override the saved ones). "
        "--base-policy DIR (e.g. from `robot-rl bc train`) learns a bounded residual on top of that base policy; "
        "--base-policy flow|mlp first trains such a base on the run's demos into <out>/base.",
    )
    add_dataclass_args(train, TrainConfig, aliases={"utd_ratio": ("--utd",)})
    train.set_defaults(func=_train)

    ev = sub.add_parser(
        "eval",
        help="evaluate a checkpoint's policy (deterministic, or --sampled): success rate, return, videos",
        description="Evaluate the policy of a checkpoint (a run dir means its latest checkpoint) "
        "on the env it was trained on.",
    )
    ev.add_argument("checkpoint", type=Path, help="run dir, or <run>/checkpoints/step_<N>")
    ev.add_argument("--episodes", type=checks.positive_int, default=20, help="evaluation episodes (default: 20)")
    ev.add_argument("--seed", type=int, default=None, help="base seed (default: the run's, as in its eval.jsonl)")
    ev.add_argument("--video-dir", type=Path, default=None, help="write eval_<checkpoint>.mp4 here (default: no video)")
    ev.add_argument(
        "--video-episodes", type=checks.nonnegative_int, default=2, help="episodes in the video (default: 2)"
    )
    ev.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ev.add_argument(
        "--per-episode",
        action="store_true",
        help="also print one line per episode: seed, success, length, return and, on the sim's tasks, where the goal "
        "was relative to the tool at the end (the peg tip to the hole's rim, the tool to the cube), in mm, and how far "
        "a held peg was pushed into the hand",
    )
    ev.add_argument(
        "--sampled",
        action="store_true",
        help="act with the policy's sampled actions, as it acts in training (what a watching operator sees), instead "
        "of its deterministic ones",
    )
    fails = sub.add_parser(
        "failures",
        help="replay a sim run's failed training episodes and say how each ended (far, peg pushed, near)",
        description="Replay the failed training episodes of a `robot-rl train` run on a sim task (the same reset "
        "seed and stored actions give the same episode) and report where each ended with the sim's truth: the goal's "
        "offset from the tool, how far a held peg was pushed into the hand, and a kind: far (the goal >= 10 mm off "
        "the tool's axis), pushed (near it, the peg pushed >= 5 mm into the hand) or near.",
    )
    fails.add_argument("run", type=Path, help="run dir of `robot-rl train` on a sim task")
    fails.add_argument("--from-step", type=int, default=0, help="only episodes ending at or after this env step")
    fails.add_argument("--json", action="store_true", help="one JSON record per episode instead of a line")
    fails.set_defaults(func=_failures)

    ev.add_argument(
        "--bench",
        action="store_true",
        help="time every step's whole action (base with chunk execution + residual or steering policy) on one torch "
        "thread; print wall and CPU p50/p99/max in ms and the load average",
    )
    ev.set_defaults(func=_eval)

    cmp = sub.add_parser(
        "compare",
        help="training runs side by side: success curves, first step at 90 %%, operator share; one PNG",
        description="Reads each run's eval.jsonl and train_episodes.jsonl and prints, per run, "
        "the success curve, the first env step whose evaluation reached --threshold, and the "
        "operator's share of training steps per --bin-steps env steps; writes both as one PNG.",
    )
    cmp.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories (robot-rl train --out)")
    cmp.add_argument("--labels", nargs="+", default=None, help="one label per run (default: directory names)")
    cmp.add_argument("--threshold", type=float, default=0.9, help="success rate to reach (default: 0.9)")
    cmp.add_argument(
        "--bin-steps", type=checks.positive_int, default=1000, help="env steps per operator-share bin (default: 1000)"
    )
    cmp.add_argument("--out", type=Path, default=Path("compare.png"), help="the PNG (default: ./compare.png)")
    cmp.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    cmp.set_defaults(func=_compare)


def _train(args: argparse.Namespace) -> int:
    from robot_rl.training.cli_args import given_overrides, replace_nested
    from robot_rl.training.config import TrainConfig, config_for_resume

    overrides = given_overrides(args, TrainConfig)
    try:
        if overrides.get("resume"):
            checks.check_run_dir(overrides["resume"], "--resume", need_checkpoint=False)
            cfg = config_for_resume(Path(overrides.pop("resume")), overrides)
        else:
            cfg = replace_nested(TrainConfig(), overrides)
    except ValueError as e:  # TrainConfig's own checks: a bad number or combination of options
        raise UsageError(checks.option_message(str(e))) from e
    cfg = _check_train(cfg, obs_given="obs" in overrides)
    from robot_rl.training.loop import train

    train(cfg)
    return 0


def _check_train(cfg, obs_given: bool):
    """Everything about a run that can be checked before demos are recorded or models built; the config to run
    (with the demos' observation mode when --obs was not typed)."""
    import dataclasses

    from robot_rl.training.env_factory import env_id_of

    if not cfg.env_id:
        checks.check_task(cfg.task, env_id_hint=True)
    checks.check_device(cfg.device)
    if not cfg.resume:
        checks.check_new_run_dir(cfg.out or "runs")
    from robot_rl.bc.base import is_entry_point
    from robot_rl.training.base_setup import check_base_kind, is_base_kind

    train_base = is_base_kind(cfg.base_policy)  # flow|mlp: trained on the run's demos first (an existing path wins)
    for option, path in (("--base-policy", cfg.base_policy), ("--reward-classifier", cfg.reward_classifier)):
        if path and not (option == "--base-policy" and (is_entry_point(path) or train_base)):  # module:factory, kind
            checks.check_exists(path, option)
    if train_base:
        check_base_kind(cfg)
    elif cfg.base_policy:  # opened once now: a base that cannot load is refused before demos or the run dir
        from robot_rl.bc.base import load_base_policy

        load_base_policy(cfg.base_policy, cfg.device)
    if cfg.demos:
        sim = not cfg.env_id
        obs = checks.check_demos(
            cfg.demos, cfg.task if sim else None, cfg.obs if sim else None, obs_given or bool(cfg.resume)
        )
        if sim and obs != cfg.obs:
            cfg = dataclasses.replace(cfg, obs=obs)
    checks.check_env(env_id_of(cfg.task, cfg.env_id), cfg.obs, cfg.max_episode_steps, cfg.demos)
    return cfg


def _eval(args: argparse.Namespace) -> int:
    checks.check_run_dir(args.checkpoint, "checkpoint")
    checks.check_device(args.device)
    if args.video_dir is not None:
        checks.check_writable_dir(args.video_dir, "--video-dir")
    from robot_rl.bench.step_timing import StepTimer, format_step_timing
    from robot_rl.training.evaluation import evaluate_checkpoint

    timer = StepTimer() if args.bench else None
    if timer is not None:
        import torch

        torch.set_num_threads(1)  # one core's cost: all of a step's torch work runs in the timed thread
    try:
        result, video = evaluate_checkpoint(
            args.checkpoint,
            args.episodes,
            seed=args.seed,
            video_dir=args.video_dir,
            video_episodes=args.video_episodes,
            device=args.device,
            timer=timer,
            sampled=args.sampled,
        )
    except (FileNotFoundError, ValueError) as e:  # an unreadable config or checkpoint of the run
        raise RunError(f"cannot evaluate {args.checkpoint}: {e}") from e
    if args.per_episode:
        from robot_rl.training.evaluation import format_episode

        for i, record in enumerate(result.per_episode):
            print(format_episode(i, record))
    line = f"{result.episodes} episodes: return {result.return_mean:.2f} ± {result.return_std:.2f}"
    if result.success_rate is not None:
        line = f"success rate {result.success_rate:.2f} ({result.success_rate:.0%}), " + line
    print(line)
    if video is not None:
        print(f"video: {video}")
    if timer is not None:
        metrics = {**result.metrics(), **timer.summary_ms()}
        print(format_step_timing(metrics, f"one step's action, {timer.label},"))
        print(json.dumps(metrics))
    return 0


def _failures(args: argparse.Namespace) -> int:
    if args.from_step < 0:
        raise UsageError(f"--from-step must be >= 0, got {args.from_step}")
    if not (args.run / "train_config.json").is_file():
        raise UsageError(f"{args.run} is not a run directory of `robot-rl train` (it has no train_config.json)")
    from robot_rl.training.failures import format_failure, replay_failures, summary

    try:
        records = replay_failures(args.run, args.from_step)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    except ValueError as e:
        raise RunError(str(e)) from e
    for record in records:
        print(json.dumps(record) if args.json else format_failure(record))
    print(summary(records, args.from_step))
    return 0


def _compare(args: argparse.Namespace) -> int:
    if args.labels is not None and len(args.labels) != len(args.runs):
        raise UsageError(f"{len(args.labels)} labels for {len(args.runs)} runs; give one --labels entry per run")
    if not 0 < args.threshold <= 1:
        raise UsageError(f"--threshold must be a success rate in (0, 1], got {args.threshold}")
    checks.check_writable_file(args.out)
    from robot_rl.training.compare import format_table, plot_compare, summarize_run

    labels = args.labels or [None] * len(args.runs)
    try:
        runs = [summarize_run(d, label, args.threshold, args.bin_steps) for d, label in zip(args.runs, labels)]
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    except ValueError as e:
        raise RunError(str(e)) from e
    plot_compare(runs, args.out, args.threshold, args.bin_steps)
    if args.json:
        for r in runs:
            print(json.dumps(r.to_json()))
    else:
        print(format_table(runs, args.threshold, args.bin_steps))
    print(f"figure: {args.out}", file=sys.stderr)
    return 0
