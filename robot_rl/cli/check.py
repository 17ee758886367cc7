"""robot-rl check <setup>: a live bring-up check of a running cell against its node table.

One rclpy node listens to the cell for `--duration` seconds and prints one line per check and robot,
`PASS|FAIL|WARN <robot> <check>: <measured> (<expected>)`: each input topic's rate and staleness, the frames
the messages carry, camera intrinsics, the tool inside the workspace box, e-stop wiring and the watchdog,
the actor's layout (against a policy with `--policy`), and with `--hold-test` a dry hold test. Exit 0 when
nothing fails (WARN does not), 1 on any FAIL, 2 on a bad command line. The checks: robot_rl/nodes/check_plan.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robot_rl.cli.up import add_setup_arguments
from robot_rl.errors import RunError, UsageError

HOLD_HELP = (
    "also run the dry hold test: stream zero tool velocity (ee_command) to each arm for 1 s and check the "
    "tool moves less than 2 mm. It commands the arm (through its safety filter and watchdog), so it is off by "
    "default: on hardware, run it with the arm clear, a hand on the e-stop, and no actor commanding it"
)


def register(sub) -> None:
    check = sub.add_parser(
        "check",
        help="live bring-up check of a running setup: topic rates, staleness, frames, workspace, e-stop, watchdog",
        description="Listen to a running setup (started with `robot-rl up SETUP` or `ros2 launch`) and print one line "
        "per check and robot: PASS/FAIL/WARN <robot> <check>: <measured> (<expected>). Expectations come from the "
        "setup's node table (launch/setups/<setup>.yaml, with --set applied), limits from the running nodes' "
        "parameters. Exit 0 when all pass (WARN does not fail), 1 on any FAIL, 2 on a usage error.",
    )
    add_setup_arguments(
        check,
        setup_help="node table name of the running setup, e.g. sim_single or franka",
        set_help="the same --set the setup was started with (what to expect); repeatable",
    )
    check.add_argument(
        "--duration",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to listen before judging rates and staleness (default 5)",
    )
    check.add_argument("--hold-test", action="store_true", help=HOLD_HELP)
    check.add_argument(
        "--policy",
        type=Path,
        metavar="DIR",
        help="a saved Policy directory to compare with each actor's observation and action layout",
    )
    check.add_argument("--json", action="store_true", help="print the lines as one JSON list instead")
    check.set_defaults(func=_check)


def _policy_layout(path: Path | None) -> tuple[dict, int] | None:
    """(obs spec, action dim) of a saved policy."""
    if path is None:
        return None
    if not path.is_dir():
        raise UsageError(
            f"--policy {path}: no such directory; pass a Policy directory (a learner's or `robot-rl "
            "train`'s policy output)"
        )
    from robot_rl.agents.policy import Policy

    try:
        policy = Policy.load(str(path))
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise RunError(f"--policy {path}: cannot load it as a Policy: {err}") from err
    return dict(policy.obs_spec), int(policy.action_dim)


def _check(args: argparse.Namespace) -> int:
    from robot_rl.nodes.check_plan import exit_code, plan_robots
    from robot_rl.nodes.table import TableError, load_table

    if not args.duration > 0:
        raise UsageError(f"--duration must be positive seconds, got {args.duration}")
    try:
        robots = plan_robots(load_table(args.setup, args.launch_dir).with_sets(args.sets), args.use_sim == "true")
    except TableError as err:
        raise UsageError(str(err)) from err
    if not robots:
        raise UsageError(
            f"setup {args.setup!r} has no arm node (robot-rl-arm-node or robot-rl-sim-node) for "
            f"--use-sim {args.use_sim}: nothing to check"
        )
    policy = _policy_layout(args.policy)
    verdicts = _listen(robots, args.duration, args.hold_test, policy)
    if args.json:
        print(json.dumps([v.as_dict() for v in verdicts], indent=1))
    else:
        for verdict in verdicts:
            print(verdict.line())
    return exit_code(verdicts)


def _listen(robots, duration_s: float, hold: bool, policy) -> list:
    from robot_rl.nodes.check_probe import CellProbe, robot_verdicts

    probe = CellProbe(robots)
    try:
        probe.read_parameters()  # spins too: messages arrive meanwhile
        for robot in robots:
            probe.subscribe_cameras(robot, list(robot.cameras(probe.arm_live.get(robot.label) or {})))
        probe.spin_for(duration_s)
        return [v for robot in robots for v in robot_verdicts(probe, robot, hold, policy)]
    finally:
        probe.close()
