"""robot-rl bc train / robot-rl bc eval: behaviour cloning with action chunks (a base policy for residual RL).

The `bc train` options are generated from `robot_rl.bc.config.BCTrainConfig` (policy options included).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robot_rl.cli import checks
from robot_rl.errors import UsageError


def register(sub) -> None:
    from robot_rl.bc.config import BCTrainConfig
    from robot_rl.training.cli_args import add_dataclass_args

    bc = sub.add_parser(
        "bc",
        help="behaviour cloning: train an action-chunking policy on demos, evaluate it",
        description="Behaviour cloning from an episode store of demos. The result is a base policy for residual "
        "RL (`robot-rl train --base-policy DIR`).",
    )
    bc_sub = bc.add_subparsers(dest="bc_command", metavar="SUBCOMMAND", required=True)
    train = bc_sub.add_parser(
        "train",
        help="train a BC policy (encoder + MLP head predicting K-action chunks) on demos and evaluate it in sim",
        description="Fit a policy predicting chunks of K actions (L1 or MSE) to every step of the demos in --demos, "
        "with a progress bar; write bc_policy.safetensors + bc_policy.json to --out, and, when the store names a "
        "sim task (or --task is given), the success rate of --eval-episodes seeded episodes to bc_eval.json.",
        epilog="example: robot-rl bc train --demos demos/pick_cube --out bc/pick_cube --steps 3000",
    )
    add_dataclass_args(train, BCTrainConfig)
    train.set_defaults(func=_train)

    ev = bc_sub.add_parser(
        "eval",
        help="evaluate a BC policy on its sim task: success rate, return, episode length",
        description="Run --episodes seeded episodes of a saved BC policy (with its chunk execution) on the sim "
        "task it was trained for (or --task) and print the success rate.",
    )
    ev.add_argument("policy", type=Path, metavar="DIR", help="BC checkpoint directory (from `robot-rl bc train`)")
    ev.add_argument("--episodes", type=checks.positive_int, default=20, help="evaluation episodes (default: 20)")
    ev.add_argument("--seed", type=int, default=0, help="episode i resets with 10**6 + seed + i (default: 0)")
    ev.add_argument("--task", default=None, help="sim task (default: the one the policy was trained for)")
    ev.add_argument("--execution", choices=("ensemble", "replay"), default=None,
                    help="override how action chunks are executed (default: the policy's own)")
    ev.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ev.set_defaults(func=_eval)


def _train(args: argparse.Namespace) -> int:
    from robot_rl.bc.config import BCTrainConfig
    from robot_rl.training.cli_args import given_overrides, replace_nested

    try:
        cfg = replace_nested(BCTrainConfig(), given_overrides(args, BCTrainConfig))
    except ValueError as e:  # BCTrainConfig's own checks
        raise UsageError(checks.option_message(str(e))) from e
    if not cfg.demos or not cfg.out:
        raise UsageError("bc train needs --demos DIR (an episode store) and --out DIR")
    demos = checks.open_store(cfg.demos, "--demos")
    if demos.n_episodes == 0:
        raise UsageError(f"--demos {cfg.demos} holds 0 episodes; record some first (robot-rl demos record ...)")
    if cfg.task is not None:
        checks.check_task(cfg.task)
        stored_task = demos.meta.get("task")
        if stored_task is not None and stored_task != cfg.task:  # the policy would see observations of another task
            raise UsageError(f"--demos {cfg.demos} holds {stored_task} demos but --task is {cfg.task}; pass --task "
                             f"{stored_task} or demos of {cfg.task}")
    checks.check_device(cfg.device)
    checks.check_writable_dir(cfg.out)
    from robot_rl.bc.train import train_bc

    train_bc(cfg)
    return 0


def _eval(args: argparse.Namespace) -> int:
    checks.check_exists(args.policy, "policy", "directory")
    if args.task is not None:
        checks.check_task(args.task)
    checks.check_device(args.device)
    from robot_rl.bc.policy import BCPolicy, ChunkExecution
    from robot_rl.bc.train import eval_line, evaluate_base, task_of

    try:
        policy = BCPolicy.load(args.policy, device=args.device)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    if args.execution:
        policy.execution = ChunkExecution(policy.cfg.chunk_size, args.execution, policy.cfg.ensemble_decay)
    task = task_of(policy.meta, args.task)
    if task is None:
        raise UsageError(f"{args.policy} names no sim task; pass --task")
    obs_mode = policy.meta.get("obs_mode") or "state"
    result = evaluate_base(policy, task, obs_mode, args.episodes, seed=args.seed)
    metrics = {"task": task, "obs_mode": obs_mode, **result.metrics()}
    print(eval_line(metrics))
    print(json.dumps(metrics))
    return 0
