"""The `robot-rl` command: one parser, one module per command group.

Each module in COMMAND_MODULES defines `register(subparsers)`, which adds its sub-commands
and sets `func` on them. Modules import heavy dependencies (torch, mujoco) only inside
their handlers, so `robot-rl --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from robot_rl.errors import UserError

COMMAND_MODULES = (
    "robot_rl.cli.train",  # train, eval
    "robot_rl.cli.bc",  # bc train, bc eval
    "robot_rl.cli.demos",  # demos record
    "robot_rl.cli.data",  # data info, data view
    "robot_rl.cli.bench",  # bench sim, bench learner, bench ros
    "robot_rl.cli.up",  # up: start a setup's ROS 2 nodes from its node table
    "robot_rl.cli.check",  # check: live bring-up check of a running setup
    "robot_rl.cli.calibrate",  # calibrate board, intrinsics, hand-eye, workspace
    "robot_rl.cli.reward",  # reward record, label, train, eval: learned success classifiers
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), pointing at --help, in the format of every
    other refusal: `robot-rl: error: bench sim: argument --steps: ...` (argparse's own is `robot-rl bench sim: error:`)."""

    def error(self, message: str):  # noqa: D102
        command = self.prog.partition(" ")[2]  # "" for the top-level parser, else e.g. "bench sim"
        where = f"{command}: " if command else ""
        self.exit(2, f"robot-rl: error: {where}{' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="robot-rl",
        description="Robot RL: train in MuJoCo or on hardware over ROS 2, record demos, inspect data, benchmark.",
        epilog="Errors print one line; add --debug anywhere (or set ROBOT_RL_DEBUG=1) for the traceback.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# Library errors whose message is already one readable line: reported like `RunError` (exit 1).
READABLE_ERRORS = (
    ("robot_rl.data.store_index", "StoreError"),  # defined there; `data repair` never imports robot_rl.data.store
    ("robot_rl.teleop.mapping", "MappingError"),
    ("robot_rl.nodes.table", "TableError"),
    ("robot_rl.wire", "WireError"),
    ("robot_rl.bench.peer", "PeerError"),
    ("robot_rl.bench.ros", "RosBenchError"),
)


def _readable(exc: BaseException) -> bool:
    if isinstance(exc, UserError):
        return True
    for module, name in READABLE_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)  # only modules the command imported
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def _debug(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("ROBOT_RL_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug(argv)
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `robot-rl data info S | head -3`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        if debug:
            traceback.print_exc()
        if _readable(exc):
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"robot-rl: error: {message}", file=sys.stderr)
            return getattr(exc, "exit_code", 1)
        if not debug:
            print(f"robot-rl: internal error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
            print(
                "robot-rl: this is a bug; rerun with --debug (or ROBOT_RL_DEBUG=1) for the traceback and report it",
                file=sys.stderr,
            )
        return 1
