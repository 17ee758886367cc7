"""`robot-rl bench fleet`: robots and the learner on separate virtual hosts (network namespaces) with faults.

Needs root (network namespaces, veth, a bridge, nftables). Run from a plain root shell it re-executes itself
under `unshare -n`, so nothing it builds is visible outside and no packet leaves; inside an already private
namespace (`./run.sh test`) it builds there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from robot_rl.bench.fleet_results import DISCOVERY, FleetBenchConfig
from robot_rl.errors import RunError, UsageError


def _percent(text: str) -> float:
    try:
        return float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage like 5 or 5%") from None


def _ms(text: str) -> float:
    try:
        return float(text.removesuffix("ms"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not milliseconds like 50 or 50ms") from None


def register_fleet(bench_sub) -> None:
    d = FleetBenchConfig()
    fleet = bench_sub.add_parser(
        "fleet",
        help="robots and the learner on separate virtual hosts (network namespaces, a bridge), with loss, delay, a "
        "partition, a learner host lost: episodes/s, MB/s, weight-push latency, updates/s, exactly-once delivery, "
        "control-tick jitter per robot",
        description="Each robot (sim robot + actor) and the learner in its own network namespace, joined by veth "
        "pairs through a bridge with its own addresses; runs --duration seconds with the faults asked for, drains "
        "(the sims stop, the actors resend until the learner holds everything), tears everything down and prints "
        "the figures. Needs root; nothing leaves the private namespaces.",
    )
    fleet.add_argument("--robots", type=int, nargs="+", default=[d.robots], metavar="N",
                       help=f"robot hosts; several values run one fleet each, e.g. 1 2 4 (default {d.robots})")  # fmt: skip
    fleet.add_argument("--duration", type=float, default=d.duration_s, metavar="S",
                       help=f"measured wall seconds after every actor's first episode (default {d.duration_s:g})")  # fmt: skip
    fleet.add_argument("--loss", type=_percent, default=d.loss_pct, metavar="P%",
                       help="frames dropped on the bridge, e.g. 10%% (default 0)")  # fmt: skip
    fleet.add_argument("--delay", type=_ms, default=d.delay_ms, metavar="MS",
                       help="one-way delay on every trip between hosts (netem where the kernel has it, else a "
                       "userspace NFQUEUE delayer: needs iptables)")  # fmt: skip
    fleet.add_argument("--jitter", type=_ms, default=d.jitter_ms, metavar="MS",
                       help="standard deviation around --delay (normal distribution)")  # fmt: skip
    fleet.add_argument("--partition-s", type=float, default=d.partition_s, metavar="S",
                       help="robot_1's link down this long, from a quarter into the run (default 0: none)")  # fmt: skip
    fleet.add_argument("--learner-down-s", type=float, default=d.learner_down_s, metavar="S",
                       help="the learner host killed (SIGKILL, namespace deleted) half-way, back after S (default 0)")  # fmt: skip
    fleet.add_argument("--discovery", choices=DISCOVERY, default=d.discovery,
                       help="multicast (DDS default) or static: ROS_STATIC_PEERS with multicast off on every link")  # fmt: skip
    fleet.add_argument("--real-time-factor", type=float, default=d.real_time_factor, metavar="X",
                       help=f"sim seconds per wall second (default {d.real_time_factor:g})")  # fmt: skip
    fleet.add_argument("--fastdds-profile", metavar="XML",
                       help="Fast DDS profile for every node, e.g. launch/config/fastdds_lossy_network.xml "
                       "(datagrams of one frame: what a lossy network needs)")  # fmt: skip
    fleet.add_argument("--host-cpus", default=d.host_cpus, metavar="SPEC",
                       help="CPUs of each host's processes, as separate machines have: auto (the learner the first "
                       "half of the CPUs, the robots the rest; on 2 cores learner=0,robots=1), none, or e.g. "
                       "learner=0,robots=1-3 (robot_N=CPUS for one robot) (default auto)")  # fmt: skip
    fleet.add_argument("--drain-stall-s", type=float, default=d.drain_stall_s, metavar="S",
                       help="after the run, wait while the learner keeps storing the robots' episodes; give up when "
                       f"it stored nothing new for S (default {d.drain_stall_s:g}; at most "
                       f"{d.drain_timeout_s:g} s in all)")  # fmt: skip
    fleet.add_argument("--set", dest="sets", action="append", default=[], metavar="NODE:PARAM:=VALUE",
                       help="a node parameter, as `robot-rl up --set` (e.g. learner:utd_ratio:=2); repeatable")  # fmt: skip
    fleet.add_argument("--out", metavar="DIR", help="keep logs and stores here (default: a temp dir, removed)")
    fleet.add_argument("--json", action="store_true", help="one JSON object per fleet instead of a table")
    fleet.set_defaults(func=_fleet)


def _reexec_isolated() -> None:
    """From a shell with real interfaces: the same command again in a private network namespace (never returns)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        raise UsageError("robot-rl bench fleet needs root and `unshare` (util-linux) to build network namespaces")
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    os.execve(unshare, [unshare, "-n", sys.executable, "-m", "robot_rl", *sys.argv[1:]], env)


def _fleet(args: argparse.Namespace) -> int:
    from robot_rl.bench.fleet_net import NetError, isolated

    configs = []
    for robots in args.robots:
        try:
            configs.append(FleetBenchConfig(robots=robots, duration_s=args.duration, loss_pct=args.loss,
                                            delay_ms=args.delay, jitter_ms=args.jitter, partition_s=args.partition_s,
                                            learner_down_s=args.learner_down_s, discovery=args.discovery,
                                            real_time_factor=args.real_time_factor, sets=tuple(args.sets),
                                            fastdds_profile=args.fastdds_profile,
                                            host_cpus=args.host_cpus, drain_stall_s=args.drain_stall_s,
                                            out=f"{args.out}/robots_{robots}" if args.out else None))  # fmt: skip
        except ValueError as e:
            raise UsageError(str(e)) from e
    if not isolated():
        _reexec_isolated()
    from robot_rl.bench.fleet import FleetBenchError, run_fleet
    from robot_rl.bench.fleet_results import format_fleet_table

    for cfg in configs:
        try:
            result = run_fleet(cfg)
        except FleetBenchError as e:
            print(e.detail, file=sys.stderr, flush=True)
            raise RunError(str(e)) from e
        except NetError as e:
            raise RunError(str(e)) from e
        print(json.dumps(result.as_dict()) if args.json else format_fleet_table(result), flush=True)
    return 0
