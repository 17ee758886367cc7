"""robot-rl bc train / eval / export: behaviour cloning with action chunks (a base policy for residual RL).

The `bc train` options are generated from `robot_rl.bc.config.BCTrainConfig` (policy options included; `--kind flow`
trains the flow-matching policy). `bc eval` runs any base `load_base_policy` opens (docs/base-policies.md) and, with
--bench, times its every step on one CPU thread.
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
        help="train a BC policy (encoder + MLP head or flow predicting K-action chunks) on demos and evaluate it",
        description="Fit a policy predicting chunks of K actions (--kind mlp: L1 or MSE regression; --kind flow: "
        "conditional flow matching from Gaussian noise) to every step of the demos in --demos, "
        "with a progress bar; write bc_policy.safetensors + bc_policy.json to --out, and, when the store names a "
        "sim task (or --task is given), the success rate of --eval-episodes seeded episodes to bc_eval.json.",
        epilog="example: robot-rl bc train --demos demos/pick_cube --out bc/pick_cube --steps 3000 [--kind flow]",
    )
    add_dataclass_args(train, BCTrainConfig)
    train.set_defaults(func=_train)

    _register_export(bc_sub)
    ev = bc_sub.add_parser(
        "eval",
        help="evaluate a base policy on its sim task: success rate, return, episode length",
        description="Run --episodes seeded episodes of a base policy (a BC checkpoint with its chunk execution, a "
        "TorchScript file, or module:factory) on the sim task it was trained for (or --task) and print the success "
        "rate; --bench also times every step's action on one CPU thread (p50/p99).",
    )
    ev.add_argument(
        "policy",
        metavar="SOURCE",
        help="BC checkpoint directory (from `robot-rl bc train`), "
        "TorchScript (.pt/.ts) or ONNX (.onnx) file, or module:factory (docs/base-policies.md)",
    )
    ev.add_argument("--episodes", type=checks.positive_int, default=20, help="evaluation episodes (default: 20)")
    ev.add_argument("--seed", type=int, default=0, help="episode i resets with 10**6 + seed + i (default: 0)")
    ev.add_argument("--task", default=None, help="sim task (default: the one the policy was trained for)")
    ev.add_argument(
        "--execution",
        choices=("ensemble", "replay"),
        default=None,
        help="override how action chunks are executed (default: the policy's own)",
    )
    ev.add_argument(
        "--obs",
        choices=("state", "pixels"),
        default=None,
        help="observation mode (default: the BC policy's; else pixels when the base reads images)",
    )
    ev.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    ev.add_argument(
        "--bench",
        action="store_true",
        help="time the base's action at every step on one torch thread; print p50/p99 in ms",
    )
    ev.set_defaults(func=_eval)


def _register_export(bc_sub) -> None:
    ex = bc_sub.add_parser(
        "export",
        help="export a BC checkpoint as one ONNX or TorchScript file with its layout (a base anywhere)",
        description="Write the BC checkpoint DIR as one file (observation tensors in, the chunk (1, K, A) "
        "out) with its layout embedded; `load_base_policy(FILE)` (`--base-policy FILE`) runs it. A flow base is "
        "exported deterministic (zero initial noise). ONNX needs the onnx extra: pip install 'robot_rl[onnx]'.",
        epilog="example: robot-rl bc export bc/pick_cube --format onnx   # -> bc/pick_cube/base.onnx",
    )
    ex.add_argument("policy", metavar="DIR", help="BC checkpoint directory (from `robot-rl bc train`)")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="file format (default: onnx)")
    ex.add_argument("--out", default=None, help="output file (default: DIR/base.onnx or DIR/base.pt)")
    ex.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from robot_rl.bc.policy import BC_CONFIG

    checks.check_exists(args.policy, "policy")
    if not (Path(args.policy) / BC_CONFIG).is_file():
        raise UsageError(f"{args.policy} holds no BC checkpoint ({BC_CONFIG}); export one from `robot-rl bc train`")
    from robot_rl.bc.export import export_base

    out = export_base(args.policy, args.format, args.out)
    print(f"exported {args.policy} as {args.format} to {out} ({out.stat().st_size} bytes)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from robot_rl.bc.config import BCTrainConfig
    from robot_rl.training.cli_args import given_overrides, replace_nested

    try:
        cfg = replace_nested(BCTrainConfig(), given_overrides(args, BCTrainConfig))
    except ValueError as e:  # BCTrainConfig's own checks
        raise UsageError(checks.option_message(str(e))) from e
    if not (cfg.demos or cfg.from_run) or not cfg.out:
        raise UsageError("bc train needs --demos DIR (an episode store) or --from-run RUN, and --out DIR")
    if cfg.demos and cfg.from_run:
        raise UsageError("give --demos DIR or --from-run RUN (a run's successful episodes), not both")
    if cfg.from_run:  # distillation: the run's successful episodes (robot_rl.bc.distill)
        from robot_rl.bc.distill import successful_episodes

        demos = successful_episodes(cfg.from_run)
    else:
        demos = checks.open_store(cfg.demos, "--demos")
    if demos.n_episodes == 0:
        raise UsageError(f"--demos {cfg.demos} holds 0 episodes; record some first (robot-rl demos record ...)")
    if cfg.task is not None:
        checks.check_task(cfg.task)
        stored_task = demos.meta.get("task")
        if stored_task is not None and stored_task != cfg.task:  # the policy would see observations of another task
            raise UsageError(
                f"--demos {cfg.demos} holds {stored_task} demos but --task is {cfg.task}; pass --task "
                f"{stored_task} or demos of {cfg.task}"
            )
    checks.check_device(cfg.device)
    checks.check_writable_dir(cfg.out)
    from robot_rl.bc.train import train_bc

    train_bc(cfg, store=demos)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from robot_rl.bc.base import is_entry_point

    if not is_entry_point(args.policy):
        checks.check_exists(args.policy, "policy")
    if args.task is not None:
        checks.check_task(args.task)
    checks.check_device(args.device)
    if args.bench:
        import torch

        torch.set_num_threads(1)
    from robot_rl.bc.base import load_base_policy, prepare_base_acting
    from robot_rl.bc.policy import BCPolicy, ChunkExecution
    from robot_rl.bc.train import eval_line, evaluate_base, task_of
    from robot_rl.spaces import spec_image_keys

    try:
        policy = load_base_policy(args.policy, device=args.device)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from e
    meta = policy.meta if isinstance(policy, BCPolicy) else {}
    if args.execution:
        if not isinstance(policy, BCPolicy):
            raise UsageError(
                "--execution applies to a BC checkpoint; a TorchScript base names its execution in its layout"
            )
        policy.execution = ChunkExecution(policy.cfg.chunk_size, args.execution, policy.cfg.ensemble_decay)
    task = task_of(meta, args.task)
    if task is None:
        raise UsageError(f"{args.policy} names no sim task; pass --task")
    spec = getattr(policy, "obs_spec", None) or {}
    obs_mode = args.obs or meta.get("obs_mode") or ("pixels" if spec_image_keys(spec) else "state")
    from robot_rl.bench.step_timing import StepTimer, TimedBase, format_step_timing

    timer = StepTimer()
    prepare_base_acting(policy)  # a frozen trunk's fast acting pass, built before the first step (not timed)
    result = evaluate_base(TimedBase(policy, timer) if args.bench else policy, task, obs_mode, args.episodes, args.seed)
    metrics = {"task": task, "obs_mode": obs_mode, **result.metrics()}
    if args.bench:
        metrics.update(timer.summary_ms())
    print(eval_line(metrics))
    if args.bench:
        print(format_step_timing(metrics, "act()"))
    print(json.dumps(metrics))
    return 0
