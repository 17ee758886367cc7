"""robot-rl bench sim | learner: throughput against the peers (gym-hil, LeRobot), measured side by side.

Figures go to stdout (a table, or one JSON object per line with --json); progress goes to stderr.
The peers run in their own Python (`--peer-python .peers-venv/bin/python`, made by
shared/peers/setup-peers.sh); without it only our side is measured.
"""

from __future__ import annotations

import argparse
import json
import sys

from robot_rl.bench.learner import SPECS, LearnerBenchConfig
from robot_rl.bench.sim import OBS_MODES, SimBenchConfig

DEVICES = ("cpu", "cuda")


def register(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmarks against peer projects: sim steps/s (gym-hil), learner updates/s (LeRobot)",
        description="Throughput benchmarks printing ratios against a peer measured in the same run.",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)

    d = SimBenchConfig()
    sim = bench_sub.add_parser(
        "sim",
        help="env steps/s of robot_rl/PickCube-v0 vs gym_hil/PandaPickCubeBase-v0 (pixels and state)",
        description="Env steps/s with random actions, resets included (episodes of the env's length), warm-up "
        "excluded: ours with obs_mode pixels (2 cameras 128x128 + state) and state; with --peer-python also "
        "gym-hil's PandaPickCubeBase-v0 with image_obs True and False, and the ratios ours / peer.",
    )
    sim.add_argument("--steps", type=int, default=d.steps, metavar="N", help=f"timed steps per mode, ours (default {d.steps})")
    sim.add_argument("--peer-steps", type=int, default=d.peer_steps, metavar="N",
                     help=f"timed steps per mode, gym-hil (default {d.peer_steps}: its pixels mode is slow)")
    sim.add_argument("--warmup-steps", type=int, default=d.warmup_steps, metavar="N",
                     help=f"untimed steps before each timing (default {d.warmup_steps})")
    sim.add_argument("--obs-mode", nargs="+", choices=OBS_MODES, default=list(OBS_MODES), help="modes to time (default: both)")
    sim.add_argument("--peer-python", metavar="PATH", help="the peers venv's python (e.g. .peers-venv/bin/python); omit to time ours only")
    sim.add_argument("--seed", type=int, default=d.seed)
    sim.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    sim.set_defaults(func=_sim)

    d = LearnerBenchConfig()
    learner = bench_sub.add_parser(
        "learner",
        help="critic updates/s of our SAC agent vs LeRobot 0.4.4's SAC learner (HIL-SERL image and state configs)",
        description="Critic updates/s on synthetic replay of the right shapes, whole UTD steps timed after warm-up. "
        "image: batch 256, 2 cameras 128x128 + 18-d state, frozen random-init ResNet-10, 2 critics, UTD 2, "
        "3-way gripper critic. state: the same with 18-d state + 10-d object state and no images.",
    )
    learner.add_argument("--updates", type=int, default=d.updates, metavar="N",
                         help=f"critic updates timed, ours (default {d.updates}; rounded up to whole UTD steps)")
    learner.add_argument("--peer-updates", type=int, default=d.peer_updates, metavar="N",
                         help=f"critic updates timed, LeRobot (default {d.peer_updates}; it is slow)")
    learner.add_argument("--warmup-steps", type=int, default=d.warmup_steps, metavar="N",
                         help=f"untimed UTD steps, ours (default {d.warmup_steps})")
    learner.add_argument("--peer-warmup-steps", type=int, default=d.peer_warmup_steps, metavar="N",
                         help=f"untimed UTD steps, LeRobot (default {d.peer_warmup_steps}; torch.compile runs here)")
    learner.add_argument("--config", nargs="+", choices=tuple(SPECS), default=list(d.configs), help="configurations (default: all)")
    learner.add_argument("--capacity", type=int, default=d.capacity, metavar="ROWS",
                         help=f"synthetic replay rows, both sides (default {d.capacity})")
    learner.add_argument("--latent-dim", type=int, metavar="N",
                         help="per-input latent size of both learners (default: 256, HIL-SERL's and LeRobot's)")
    learner.add_argument("--device", choices=DEVICES, default=d.device, help="torch device of both learners (default cpu)")
    learner.add_argument("--peer-python", metavar="PATH", help="the peers venv's python (e.g. .peers-venv/bin/python); omit to time ours only")
    learner.add_argument("--peer-torch-compile", choices=("on", "off"), default="on",
                         help="LeRobot's SACConfig.use_torch_compile (default on, as LeRobot ships it)")
    learner.add_argument("--seed", type=int, default=d.seed)
    learner.add_argument("--json", action="store_true", help="one JSON object per configuration instead of a table")
    learner.set_defaults(func=_learner)


def _sim(args: argparse.Namespace) -> int:
    from robot_rl.bench.peer import PeerError
    from robot_rl.bench.sim import format_sim_table, run_sim_bench

    try:  # bad settings and a missing peer interpreter fail here, before anything is timed
        cfg = SimBenchConfig(steps=args.steps, warmup_steps=args.warmup_steps, peer_steps=args.peer_steps,
                             peer_python=args.peer_python, obs_modes=tuple(dict.fromkeys(args.obs_mode)), seed=args.seed)
    except (PeerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        results = run_sim_bench(cfg)
    except PeerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print(results, args.json, lambda: format_sim_table(results))
    return 0


def _learner(args: argparse.Namespace) -> int:
    from robot_rl.bench.learner import format_learner_table, run_learner_bench
    from robot_rl.bench.peer import PeerError

    import torch

    from robot_rl.bench.timing import available_cores

    torch.set_num_threads(available_cores())  # the peer process does the same
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print("error: --device cuda was asked for but torch sees no CUDA device; use --device cpu", file=sys.stderr)
            return 1
    try:  # bad settings and a missing peer interpreter fail here, before anything is timed
        cfg = LearnerBenchConfig(
            configs=tuple(dict.fromkeys(args.config)), updates=args.updates, warmup_steps=args.warmup_steps,
            peer_updates=args.peer_updates, peer_warmup_steps=args.peer_warmup_steps, capacity=args.capacity,
            device=args.device, peer_python=args.peer_python, peer_torch_compile=args.peer_torch_compile == "on",
            seed=args.seed, latent_dim=args.latent_dim,
        )
    except (PeerError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        results = run_learner_bench(cfg)
    except PeerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print(results, args.json, lambda: format_learner_table(results, cfg.specs))
    return 0


def _print(results, as_json: bool, table) -> None:
    if as_json:
        for r in results:
            print(json.dumps(r.to_json()), flush=True)
    else:
        print(table(), flush=True)
