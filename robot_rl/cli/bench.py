"""robot-rl bench sim | learner | ros: throughput against the peers (gym-hil, LeRobot), and the ROS 2 loop's timing.

Figures go to stdout (a table, or one JSON object per line with --json); progress goes to stderr.
The peers run in their own Python (`--peer-python .peers-venv/bin/python`, made by
shared/peers/setup-peers.sh); without it only our side is measured.
"""

from __future__ import annotations

import argparse
import json
import sys

from robot_rl.bench.learner import SPECS, LearnerBenchConfig
from robot_rl.bench.peer import PeerError
from robot_rl.bench.sim import OBS_MODES, SimBenchConfig
from robot_rl.cli.bench_fleet import register_fleet
from robot_rl.cli.bench_learning import register_learning
from robot_rl.errors import UsageError

DEVICES = ("cpu", "cuda")


def register(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks: sim steps/s (vs gym-hil), learner updates/s (vs LeRobot), ROS 2 control-loop timing",
        description="Throughput benchmarks printing ratios against a peer measured in the same run, and the "
        "ROS 2 loop's timing (jitter, latency, inference, weights broadcast, learner ingest).",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)

    _register_sim(bench_sub)
    _register_learner(bench_sub)
    _register_ros(bench_sub)
    register_learning(bench_sub)
    register_fleet(bench_sub)


def _register_sim(bench_sub) -> None:
    """`robot-rl bench sim`: its options."""
    d = SimBenchConfig()
    sim = bench_sub.add_parser(
        "sim",
        help="env steps/s of robot_rl/PickCube-v0 vs gym_hil/PandaPickCubeBase-v0 (pixels and state)",
        description="Env steps/s with random actions, resets included (episodes of the env's length), warm-up "
        "excluded: ours with obs_mode pixels (2 cameras 128x128 + state) and state; with --peer-python also "
        "gym-hil's PandaPickCubeBase-v0 with image_obs True and False, and the ratios ours / peer.",
    )
    sim.add_argument(
        "--steps", type=int, default=d.steps, metavar="N", help=f"timed steps per mode, ours (default {d.steps})"
    )
    sim.add_argument(
        "--peer-steps",
        type=int,
        default=d.peer_steps,
        metavar="N",
        help=f"timed steps per mode, gym-hil (default {d.peer_steps}: its pixels mode is slow)",
    )
    sim.add_argument(
        "--warmup-steps",
        type=int,
        default=d.warmup_steps,
        metavar="N",
        help=f"untimed steps before each timing (default {d.warmup_steps})",
    )
    sim.add_argument(
        "--obs-mode", nargs="+", choices=OBS_MODES, default=list(OBS_MODES), help="modes to time (default: both)"
    )
    sim.add_argument(
        "--peer-python",
        metavar="PATH",
        help="the peers venv's python (e.g. .peers-venv/bin/python); omit to time ours only",
    )
    sim.add_argument("--seed", type=int, default=d.seed)
    sim.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    sim.set_defaults(func=_sim)


def _register_learner(bench_sub) -> None:
    """`robot-rl bench learner`: its options."""
    d = LearnerBenchConfig()
    learner = bench_sub.add_parser(
        "learner",
        help="critic updates/s of our SAC agent vs LeRobot 0.4.4's SAC learner (HIL-SERL image and state configs)",
        description="Critic updates/s on synthetic replay of the right shapes, whole UTD steps timed after warm-up. "
        "image: batch 256, 2 cameras 128x128 + 18-d state, frozen random-init ResNet-10, 2 critics, UTD 2, "
        "3-way gripper critic. state: the same with 18-d state + 10-d object state and no images.",
    )
    learner.add_argument(
        "--updates",
        type=int,
        default=d.updates,
        metavar="N",
        help=f"critic updates timed, ours (default {d.updates}; rounded up to whole UTD steps)",
    )
    learner.add_argument(
        "--peer-updates",
        type=int,
        default=d.peer_updates,
        metavar="N",
        help=f"critic updates timed, LeRobot (default {d.peer_updates}; it is slow)",
    )
    learner.add_argument(
        "--warmup-steps",
        type=int,
        default=d.warmup_steps,
        metavar="N",
        help=f"untimed UTD steps, ours (default {d.warmup_steps})",
    )
    learner.add_argument(
        "--peer-warmup-steps",
        type=int,
        default=d.peer_warmup_steps,
        metavar="N",
        help=f"untimed UTD steps, LeRobot (default {d.peer_warmup_steps}; torch.compile runs here)",
    )
    learner.add_argument(
        "--config", nargs="+", choices=tuple(SPECS), default=list(d.configs), help="configurations (default: all)"
    )
    learner.add_argument(
        "--capacity",
        type=int,
        default=d.capacity,
        metavar="ROWS",
        help=f"synthetic replay rows, both sides (default {d.capacity})",
    )
    learner.add_argument(
        "--latent-dim",
        type=int,
        metavar="N",
        help="per-input latent size of both learners (default: 256, HIL-SERL's and LeRobot's)",
    )
    learner.add_argument(
        "--device", choices=DEVICES, default=d.device, help="torch device of both learners (default cpu)"
    )
    learner.add_argument(
        "--peer-python",
        metavar="PATH",
        help="the peers venv's python (e.g. .peers-venv/bin/python); omit to time ours only",
    )
    learner.add_argument(
        "--peer-torch-compile",
        choices=("on", "off"),
        default="on",
        help="LeRobot's SACConfig.use_torch_compile (default on, as LeRobot ships it)",
    )
    learner.add_argument("--seed", type=int, default=d.seed)
    learner.add_argument(
        "--rounds",
        type=int,
        default=d.rounds,
        metavar="N",
        help=f"time ours and the peer N times alternately and report the medians (default {d.rounds}; "
        "a shared machine's speed drifts between runs minutes apart)",
    )
    learner.add_argument("--json", action="store_true", help="one JSON object per configuration instead of a table")
    learner.set_defaults(func=_learner)


def _register_ros(bench_sub) -> None:
    """`robot-rl bench ros`: its options (the goals it prints come from robot_rl.bench.ros)."""
    from robot_rl.bench.ros import GOAL_INFER_P99_MS, GOAL_JITTER_P99_MS, RosBenchConfig

    d = RosBenchConfig()
    ros = bench_sub.add_parser(
        "ros",
        help="ROS 2 loop at 10 Hz with two 128x128 cameras: jitter, latency, inference, weights broadcast, learner ingest",
        description="Starts the sim robot (real time, 2 cameras 128x128 at 10 Hz) and a pixels actor (10 Hz, --encoder "
        "policy) as processes for --seconds, broadcasting the weights --broadcasts times from this process (--push: "
        "as the learner does, or the whole policy each time); then a "
        "learner node ingesting a burst of --episodes pixel episodes. Prints p50/p99 of control-period jitter "
        f"(goal p99 <= {GOAL_JITTER_P99_MS:g} ms), observation->command latency, policy inference (goal p99 <= "
        f"{GOAL_INFER_P99_MS:g} ms), weights broadcast latency and per-episode ingest, and episodes/s and MB/s ingested. "
        "DDS stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless set) in a private ROS_DOMAIN_ID.",
    )
    ros.add_argument(
        "--seconds",
        type=float,
        default=d.seconds,
        metavar="S",
        help=f"wall seconds of the control phase after the actor is up (default {d.seconds:g})",
    )
    ros.add_argument(
        "--broadcasts",
        type=int,
        default=d.broadcasts,
        metavar="K",
        help=f"weight broadcasts during the control phase (default {d.broadcasts})",
    )
    ros.add_argument(
        "--encoder",
        choices=("conv", "resnet10"),
        default=d.encoder,
        help="the actor's pixels policy: conv (trained through the critic, all of it in every push) or "
        f"resnet10 (the learner's pixel recipe: frozen trunk, sent once) (default {d.encoder})",
    )
    ros.add_argument(
        "--push",
        choices=("delta", "full"),
        default=d.push,
        help="delta: the full policy once, then only trainable tensors in fp16, as the learner publishes; "
        f"full: the whole policy every broadcast (default {d.push})",
    )
    for flag, metavar, what in (
        ("--episodes", "N", "episodes sent to the learner in one burst"),
        ("--threads", "N", "the actor's torch CPU threads"),
        ("--frame-threads", "N", "the actor's frame_threads: threads a tick's camera frames go through the trunk on"),
        (
            "--control-priority",
            "P",
            "the actor's control_priority: SCHED_FIFO priority of its control thread where permitted, 0 = off",
        ),
        (
            "--sim-priority",
            "P",
            "the sim robot's control_priority: SCHED_FIFO priority of each physics period where permitted, 0 = off",
        ),
        (
            "--cpu-latency-us",
            "US",
            "the actor's and the sim robot's cpu_latency_us: /dev/cpu_dma_latency held at this while they run, "
            "where permitted; negative = idle states left as the system sets them",
        ),
    ):
        default = getattr(d, flag[2:].replace("-", "_"))
        ros.add_argument(flag, type=int, default=default, metavar=metavar, help=f"{what} (default {default})")
    _add_ros_switches(ros)
    ros.set_defaults(func=_ros)


def _config(cls, **settings):
    """cls(**settings); a setting its __post_init__ refuses (a ValueError, or a PeerError for a --peer-python
    that is not an interpreter) as a UsageError (exit 2), before anything is built or timed."""
    try:
        return cls(**settings)
    except (ValueError, PeerError) as e:
        raise UsageError(str(e)) from e


def _sim(args: argparse.Namespace) -> int:
    from robot_rl.bench.sim import format_sim_table, run_sim_bench

    cfg = _config(
        SimBenchConfig,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        peer_steps=args.peer_steps,
        peer_python=args.peer_python,
        obs_modes=tuple(dict.fromkeys(args.obs_mode)),
        seed=args.seed,
    )
    results = run_sim_bench(cfg)  # a failing peer script raises PeerError: one line, exit 1
    _print(results, args.json, lambda: format_sim_table(results))
    return 0


def _learner(args: argparse.Namespace) -> int:
    cfg = _config(
        LearnerBenchConfig,
        configs=tuple(dict.fromkeys(args.config)),
        updates=args.updates,
        warmup_steps=args.warmup_steps,
        peer_updates=args.peer_updates,
        peer_warmup_steps=args.peer_warmup_steps,
        capacity=args.capacity,
        device=args.device,
        peer_python=args.peer_python,
        peer_torch_compile=args.peer_torch_compile == "on",
        seed=args.seed,
        latent_dim=args.latent_dim,
        rounds=args.rounds,
    )
    from robot_rl.cli.checks import check_device

    check_device(args.device)  # before anything is built or timed

    import torch

    from robot_rl.bench.learner import format_learner_table, run_learner_bench
    from robot_rl.bench.timing import available_cores
    from robot_rl.cpu import keep_freed_memory

    torch.set_num_threads(available_cores())  # the peer process does the same
    keep_freed_memory()  # as `robot-rl train` and the learner node do; the peer runs as it ships
    results = run_learner_bench(cfg)  # a failing peer script raises PeerError: one line, exit 1
    _print(results, args.json, lambda: format_learner_table(results, cfg.specs))
    return 0


def _add_ros_switches(ros) -> None:
    """`robot-rl bench ros`'s switches and where it runs and writes."""
    for flag, what in (
        (
            "--no-wake",
            "wake_lead_ms 0 for the actor and the sim robot: their control threads hold SCHED_FIFO only while a "
            "period runs, not from shortly before it is due (robot_rl.acting.wake)",
        ),
        (
            "--sim-inline-cameras",
            "the sim robot draws its cameras inside its physics period (camera_thread false), not on a thread of "
            "their own (its default): the comparison for the camera thread",
        ),
    ):
        ros.add_argument(flag, action="store_true", help=what)
    ros.add_argument(
        "--domain-id",
        type=int,
        metavar="ID",
        help="ROS_DOMAIN_ID of all processes (default: a private one derived from this process's id)",
    )
    ros.add_argument(
        "--out",
        metavar="DIR",
        help="keep node logs, the actor's timing log and stores here (default: a temp dir, removed)",
    )
    ros.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def _ros(args: argparse.Namespace) -> int:
    from robot_rl.bench.ros import RosBenchConfig, RosBenchError, format_ros_table, run_ros_bench

    cfg = _config(
        RosBenchConfig,
        seconds=args.seconds,
        broadcasts=args.broadcasts,
        episodes=args.episodes,
        encoder=args.encoder,
        push=args.push,
        threads=args.threads,
        frame_threads=args.frame_threads,
        control_priority=args.control_priority,
        sim_priority=args.sim_priority,
        cpu_latency_us=args.cpu_latency_us,
        wake=not args.no_wake,
        sim_camera_thread=not args.sim_inline_cameras,
        out=args.out,
        domain_id=args.domain_id,
    )
    try:
        result = run_ros_bench(cfg)
    except RosBenchError as e:  # a node died or never came up: the end of its log, then the one-line error
        if e.detail:
            print(e.detail, file=sys.stderr, flush=True)
        raise
    _print([result], args.json, lambda: format_ros_table(result))
    return 0


def _print(results, as_json: bool, table) -> None:
    if as_json:
        for r in results:
            print(json.dumps(r.to_json()), flush=True)
    else:
        print(table(), flush=True)
