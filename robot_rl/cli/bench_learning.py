"""robot-rl bench learning: multi-seed learning grids (variants x seeds as separate `robot-rl train` runs), a report.

A subcommand of `robot-rl bench` (robot_rl/cli/bench.py registers it); the grid itself is robot_rl.bench.learning,
the report robot_rl.bench.learning_report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register_learning(bench_sub) -> None:
    """`robot-rl bench learning`: its options."""
    learning = bench_sub.add_parser(
        "learning",
        help="multi-seed learning: variants x seeds as separate training runs; first env step at 90 %%, medians, PNG",
        description="Runs `robot-rl train` for every (variant, seed) as its own process (one torch thread each, --jobs "
        "at once), resumable: run the same command again after a stop. Writes <out>/<variant>/seed_<S> (ordinary run "
        "dirs), then <out>/results.md (per-seed first env step at --threshold, median and spread per variant, the "
        "lowest success after it, final success, wall-clock, the operator's share per 1 k steps and after each "
        "seed's first --threshold; each later variant against the first, seed by seed), results.json and "
        "results.png (median curve with min-max band per variant), and prints the table.",
    )
    learning.add_argument("--task", default="pick_cube", help="sim task (default pick_cube)")
    learning.add_argument(
        "--obs", choices=("state", "pixels"), default="state", help="observation mode (default state)"
    )
    learning.add_argument(
        "--variant",
        dest="variants",
        action="append",
        metavar='NAME[="OPTIONS"]',
        help='a variant: a name and `robot-rl train` options, e.g. op="--operator" or '
        'residual="--base-policy runs/bc5"; repeat for more, the baseline first (default: one variant, "default")',
    )
    learning.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 0..N-1 (default 5)")
    learning.add_argument("--seed-list", type=int, nargs="+", metavar="S", help="these seeds instead of --seeds")
    learning.add_argument("--steps", type=int, default=10_000, metavar="N", help="env steps per run (default 10000)")
    learning.add_argument(
        "--eval-every", type=int, default=1_000, metavar="N", help="env steps between evaluations (default 1000)"
    )
    learning.add_argument(
        "--eval-episodes", type=int, default=10, metavar="N", help="episodes per evaluation (default 10)"
    )
    learning.add_argument("--threshold", type=float, default=0.9, help="success rate to reach (default 0.9)")
    learning.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="runs at once (default 0: one per CPU core, as many as fit in the available memory: a pixel run holds "
        "~1.5 GB + its replay's frames, ~100 kB per env step with 2 cameras 128x128)",
    )
    learning.add_argument(
        "--train-args",
        default="",
        metavar='"OPTIONS"',
        help='`robot-rl train` options for every run, before the variant\'s; write it with "=" '
        '(e.g. --train-args="--replay-capacity 30000")',
    )
    learning.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the grid's directory (reused to resume)"
    )
    learning.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the runs there, start none (give the grid's own options)",
    )
    learning.set_defaults(func=_learning)


def _learning(args: argparse.Namespace) -> int:
    import shlex

    from robot_rl.bench.learning import LearningBenchConfig, Variant, check_grid, recorded_variants, run_grid
    from robot_rl.bench.learning_report import collect, write_report
    from robot_rl.errors import RunError, UsageError

    try:
        train_args = tuple(shlex.split(args.train_args))
    except ValueError as e:
        raise UsageError(f"--train-args: cannot split {args.train_args!r}: {e}") from None
    variants = [Variant.parse(v) for v in (args.variants or recorded_variants(args.out) or ["default"])]
    cfg = LearningBenchConfig(
        out=args.out,
        task=args.task,
        obs=args.obs,
        variants=variants,
        seeds=list(args.seed_list) if args.seed_list else list(range(args.seeds)),
        steps=args.steps,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        threshold=args.threshold,
        jobs=args.jobs,
        train_args=train_args,
    )
    if args.report_only:
        check_grid(
            cfg, report_only=True
        )  # the report's command and title must be the grid's: refuse settings that differ
        failed = []
    else:
        failed = run_grid(cfg)
    command = cfg.command()
    results = collect(cfg.out, [v.name for v in variants], cfg.seeds, cfg.threshold)
    if not any(v.seeds for v in results):
        raise RunError(f"no run in {cfg.out} has an evaluation yet; see the logs beside the run dirs")
    title = f"{cfg.task}, {cfg.obs}, {len(cfg.seeds)} seeds, {cfg.steps} env steps"
    print(write_report(cfg.out, results, cfg.threshold, cfg.steps, command, title), end="", flush=True)
    print(f"bench learning: wrote {cfg.out / 'results.md'}, results.json, results.png", file=sys.stderr)
    if failed:
        raise RunError(
            f"{len(failed)} run(s) failed: {', '.join(r.label for r in failed)}; their logs are beside "
            "the run dirs (*.train.log); run the same command again to retry them"
        )
    return 0
