"""robot-rl up <setup>: start a setup's nodes from its node table, as `ros2 launch` would, without `launch`.

Each node of `launch/setups/<setup>.yaml` runs as its own process with the table's `--ros-args`
(the same command lines `launch/robot_rl.launch.py` starts). Output lines are prefixed with the node's
name; SIGINT/SIGTERM are forwarded to every node; when one node dies, the others are stopped and
`up` exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from robot_rl.errors import RunError, UsageError

BOOTSTRAP_GUARD = "_ROS_WHEELS_BOOTSTRAP_COMPLETE"  # the ROS wheels' re-exec guard; children must not inherit it


def register(sub) -> None:
    up = sub.add_parser(
        "up",
        help="start a setup's ROS 2 nodes from its node table (launch/setups/<setup>.yaml)",
        description="Start every node of a setup as a separate process with the node table's --ros-args "
        "(-r __node:=NAME -r __ns:=/NS --params-file FILE -p KEY:=VALUE -r FROM:=TO), prefix their output with "
        "the node name, forward Ctrl-C/SIGTERM, and exit non-zero if a node dies.",
    )
    add_setup_arguments(
        up,
        setup_help="node table name, e.g. sim_single or sim_two_robots",
        set_help="set one parameter of the nodes named NODE (a name like learner, or a full name like "
        "/robot_1/actor), after the table's files and overrides; repeatable. "
        "Example: --set learner:demos:=demos/pick_cube --set actor:obs_mode:=pixels",
    )
    up.add_argument("--dry-run", action="store_true", help="print the command lines, one per node, and exit")
    up.add_argument(
        "--static-peers",
        metavar="ADDR;ADDR",
        help="unicast DDS discovery for networks that block multicast: the other machines' addresses, "
        "';'-separated (sets ROS_STATIC_PEERS for every node; give every machine the list; docs/ros2.md)",
    )
    up.add_argument(
        "--grace-s",
        type=float,
        default=10.0,
        metavar="S",
        help="how long nodes get to exit after a signal before they are killed (default 10)",
    )
    up.set_defaults(func=_up)


def add_setup_arguments(parser, setup_help: str, set_help: str) -> None:
    """SETUP, --use-sim, --set NODE:PARAM:=VALUE and --launch-dir: how `up` and `check` name a setup's nodes."""
    parser.add_argument("setup", help=setup_help)
    parser.add_argument(
        "--use-sim",
        choices=("true", "false"),
        default="true",
        help="true: the simulation's nodes (mode sim or any); false: hardware (mode real or any)",
    )
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE:PARAM:=VALUE", help=set_help)
    parser.add_argument(
        "--launch-dir",
        type=Path,
        metavar="DIR",
        help="directory holding setups/ and config/ (default: the project's launch/)",
    )


def _resolve(executable: str) -> str:
    """A console script of this environment first (the venv's bin/), then PATH."""
    local = Path(sys.executable).parent / executable
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(executable)
    if found is None:
        raise RunError(
            f"executable {executable!r} is not installed (looked in {local.parent} and PATH); "
            "run `pip install -e .` in the project"
        )
    return found


def _pump(name: str, stream, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            sys.stdout.write(f"[{name}] {line}" if line.endswith("\n") else f"[{name}] {line}\n")
            sys.stdout.flush()
    stream.close()


def _up(args: argparse.Namespace) -> int:
    from robot_rl.nodes.table import TableError, load_table

    try:  # an unknown setup, a broken table or a bad --set is the command line's fault: exit 2
        table = load_table(args.setup, args.launch_dir)
        nodes = table.with_sets(args.sets).select(args.use_sim == "true")
    except TableError as err:
        raise UsageError(str(err)) from err
    if not nodes:
        raise UsageError(f"setup {args.setup!r} has no nodes for --use-sim {args.use_sim}")
    commands = {node.fqn: [_resolve(node.executable), *node.ros_args()] for node in nodes}
    env = dict(table.env)  # the setup's (discovery, DDS profile); the nodes inherit it, rcl reads it at init
    if args.static_peers:
        env["ROS_STATIC_PEERS"] = args.static_peers
    os.environ.update(env)
    if args.dry_run:
        for name, value in env.items():  # a shell can run the printout as it is
            print(f"export {name}={shlex.quote(value)}")
        for cmd in commands.values():
            print(shlex.join(cmd))
        return 0
    return _supervise(commands, args.grace_s)


def _supervise(commands: dict[str, list[str]], grace_s: float) -> int:
    env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_GUARD}
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, _frame: received.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    lock, procs, pumps = threading.Lock(), {}, []
    try:
        for name, cmd in commands.items():
            # Own session: a terminal's Ctrl-C reaches `up` only, which forwards it once to every node.
            procs[name] = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            pumps.append(threading.Thread(target=_pump, args=(name, procs[name].stdout, lock), daemon=True))
            pumps[-1].start()
        print(f"[up] started {', '.join(f'{n} (pid {p.pid})' for n, p in procs.items())}", flush=True)
        died = None
        while not received and died is None:
            died = next((n for n, p in procs.items() if p.poll() is not None), None)
            time.sleep(0.05)
        if died is not None:
            print(f"[up] {died} exited with code {procs[died].returncode}; stopping the others", flush=True)
        sig = received[0] if received else signal.SIGINT
        _stop(procs, sig, grace_s)
    finally:
        for proc in procs.values():  # whatever happened above, leave no node behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    for t in pumps:
        t.join(timeout=2.0)
    codes = {n: p.returncode for n, p in procs.items()}
    print(f"[up] exit codes: {codes}", flush=True)
    if died is not None:
        return codes[died] or 1
    return 0 if all(c == 0 for c in codes.values()) else 1


def _stop(procs: dict[str, subprocess.Popen], sig: int, grace_s: float) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(sig)
    deadline = time.monotonic() + grace_s
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            print(f"[up] {name} did not exit within {grace_s} s of {signal.Signals(sig).name}: killing it", flush=True)
            proc.kill()
            proc.wait()
