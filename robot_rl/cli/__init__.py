"""The `robot-rl` command: one parser, one module per command group.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its sub-commands
and sets `func` on them. Modules import heavy dependencies (torch, mujoco) only inside
their handlers, so `robot-rl --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "robot_rl.cli.train",  # train, eval
    "robot_rl.cli.bc",  # bc train, bc eval
    "robot_rl.cli.demos",  # demos record
    "robot_rl.cli.data",  # data info, data view
    "robot_rl.cli.bench",  # bench sim, bench learner, bench ros
    "robot_rl.cli.up",  # up: start a setup's ROS 2 nodes from its node table
    "robot_rl.cli.calibrate",  # calibrate board, intrinsics, hand-eye, workspace
    "robot_rl.cli.reward",  # reward record, label, train, eval: learned success classifiers
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-rl",
        description="Robot RL: train in MuJoCo or on hardware over ROS 2, record demos, inspect data, benchmark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
