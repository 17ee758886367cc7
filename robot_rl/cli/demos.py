"""robot-rl demos record: record demonstrations into an episode store."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_rl.cli import checks
from robot_rl.cli.checks import positive_int
from robot_rl.envs import TASK_ENV_IDS
from robot_rl.errors import RunError, UsageError


def register(sub) -> None:
    demos = sub.add_parser(
        "demos",
        help="record demonstrations into an episode store",
        description="Record demonstrations (episodes of an expert) into a zarr episode store.",
    )
    demos_sub = demos.add_subparsers(dest="demos_command", metavar="SUBCOMMAND", required=True)
    record = demos_sub.add_parser(
        "record",
        help="record episodes of the simulated task's scripted expert, or driven by a person with a teleop device",
        description="Record --episodes episodes of the sim task into the episode store at --out (created, or "
        "appended to when its task and layout match). Scripted episodes' goals spread over the task's range (--layout "
        "spread, the default: farthest-point sampling over 10x candidate reset seeds of a block of their own per --seed); "
        "with --layout random, and with --teleop, attempt j resets the env with seed S + j.\n\n"
        "--scripted: the task's scripted expert (ground truth from the simulation).\n"
        "--teleop DEVICE: a person drives, in real time at the task's control rate. The arm holds still "
        "unless the person drives; every step records is_intervention. Keys / buttons: success ends the "
        "episode as a success (stored), failure ends it as a failure (stored with --keep-failures), "
        "re-record drops it and tries the same seed again. DEVICE keyboard reads this terminal (works over "
        "SSH; keys: w/s a/d r/f move x/y/z, t take over / give back, c/v close / open the gripper, y success, "
        "n failure, x re-record); spacemouse reads a SpaceMouse over HID (pyspacemouse); ros reads "
        "teleop/command, so any teleop node drives it (gamepad: joy's game_controller_node + "
        "robot-rl-teleop-node; SpaceMouse: spacenavd + robot-rl-teleop-node mapping:=spacemouse).\n\n"
        "On hardware, record through the actor node instead: robot-rl up SETUP --set actor:warmup:=teleop "
        "--set actor:store:=DIR (see docs/human-in-the-loop.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  robot-rl demos record --task pick_cube --scripted --episodes 20 --out demos/pick_cube\n"
        "  robot-rl demos record --task pick_cube --teleop keyboard --episodes 5 --out demos/pick_cube_by_hand",
    )
    record.add_argument("--task", required=True, choices=sorted(TASK_ENV_IDS), help="simulated task")
    who = record.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--scripted", action="store_true", help="use the task's scripted expert (ground truth from the simulation)"
    )
    who.add_argument(
        "--teleop",
        choices=("keyboard", "spacemouse", "ros"),
        metavar="DEVICE",
        help="a person drives with DEVICE: keyboard, spacemouse or ros (any node on teleop/command)",
    )
    _add_teleop_options(record)
    record.add_argument("--episodes", type=positive_int, required=True, metavar="N", help="episodes to add")
    record.add_argument("--out", type=Path, required=True, metavar="DIR", help="episode store directory")
    record.add_argument(
        "--obs",
        choices=("state", "pixels"),
        default="state",
        help="observations to store: a flat state vector (state, default, as `robot-rl train`) or "
        "proprioception + camera images (pixels, for `robot-rl train --obs pixels`)",
    )
    record.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the first attempt (default 0)")
    failures = record.add_mutually_exclusive_group()
    failures.add_argument(
        "--only-success",
        dest="keep_failures",
        action="store_false",
        help="store only episodes in which the expert succeeded; retry failures (default)",
    )
    failures.add_argument(
        "--keep-failures",
        dest="keep_failures",
        action="store_true",
        help="store every attempted episode, successful or not",
    )
    record.set_defaults(keep_failures=False)
    record.add_argument(
        "--noise", type=float, default=0.0, metavar="X", help="expert action noise for diverse demos (default 0)"
    )
    record.add_argument(
        "--layout",
        choices=("random", "spread"),
        default="spread",
        help="--scripted: where the episodes' goals lie: spread over the task's range (farthest-point over 10x "
        "candidate seeds of a block of their own per S; default) or random (attempt j resets with seed S + j)",
    )
    record.add_argument(
        "--max-attempts", type=positive_int, metavar="M", help="give up after M attempts (default 3 * episodes + 10)"
    )
    record.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    record.set_defaults(func=_record)


def _add_teleop_options(record: argparse.ArgumentParser) -> None:
    """The options that shape a person's teleop device (--mapping, --speed)."""
    record.add_argument(
        "--mapping",
        default="",
        metavar="NAME|FILE",
        help="teleop device mapping (default: keyboard / spacemouse_hid); see robot_rl/teleop/mappings",
    )
    record.add_argument(
        "--speed",
        type=float,
        default=0.5,
        metavar="F",
        help="teleop: a full stick or key moves at this fraction of the largest action (default 0.5)",
    )


def _record(args: argparse.Namespace) -> int:
    from robot_rl.data.demos import DemoConfig, record_scripted_demos
    from robot_rl.data.store import StoreError

    checks.check_writable_dir(args.out)
    if args.noise < 0:
        raise UsageError(f"--noise must be >= 0 (the expert's action noise), got {args.noise}")
    if args.teleop:
        return _record_teleop(args)

    cfg = DemoConfig(
        task=args.task,
        episodes=args.episodes,
        out=args.out,
        obs_mode=args.obs,
        seed=args.seed,
        keep_failures=args.keep_failures,
        noise=args.noise,
        max_attempts=args.max_attempts,
        progress=args.progress,
        layout=args.layout,
    )
    try:
        result = record_scripted_demos(cfg)
    except (StoreError, RuntimeError) as e:
        raise RunError(str(e)) from e
    print(
        f"recorded {result.added} episodes ({result.added_steps} steps) of {args.task} to {result.store_path}; "
        f"expert success rate {100 * result.success_rate:.1f} % ({result.successes}/{result.attempts} attempts); "
        f"the store now holds {result.store_episodes} episodes"
    )
    return 0


def _record_teleop(args: argparse.Namespace) -> int:
    from robot_rl.data.store import StoreError
    from robot_rl.data.teleop_demos import TeleopDemoConfig, record_teleop_demos
    from robot_rl.teleop.mapping import MappingError

    if not 0 < args.speed <= 1:
        raise UsageError(f"--speed must be in (0, 1], got {args.speed}")
    cfg = TeleopDemoConfig(
        task=args.task,
        episodes=args.episodes,
        out=args.out,
        device=args.teleop,
        mapping=args.mapping,
        obs_mode=args.obs,
        seed=args.seed,
        keep_failures=args.keep_failures,
        translation_scale=args.speed,
    )
    try:
        result = record_teleop_demos(cfg)
    except (StoreError, MappingError, RuntimeError) as e:
        raise RunError(str(e)) from e
    print(
        f"recorded {result.added} episodes of {args.task} by {args.teleop} to {result.store_path} "
        f"({result.successes} successes, {result.failures} failures, {result.discarded} re-recorded); "
        f"the store now holds {result.store_episodes} episodes"
    )
    return 0
