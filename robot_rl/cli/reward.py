"""robot-rl reward: record, label, train and evaluate success (reward) classifiers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robot_rl.cli import checks
from robot_rl.cli.checks import positive_int
from robot_rl.errors import RunError, UsageError
from robot_rl.reward.labels import SOURCES as LABEL_SOURCES


def _csv(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list; got {text!r}")
    return items


def register(sub) -> None:
    reward = sub.add_parser(
        "reward",
        help="learned reward (success) classifiers: record, label, train, eval",
        description="Success classifiers that replace the sim's ground-truth reward on a real robot: record labelled "
        "sim data, review and edit per-frame labels, train an image (or VLM) classifier with a threshold calibrated "
        "to a target precision, and evaluate it.",
    )
    rs = reward.add_subparsers(dest="reward_command", metavar="SUBCOMMAND", required=True)

    _register_record(rs)
    _register_label(rs)
    _register_train(rs)
    _register_eval(rs)


def _register_record(rs) -> None:
    """`robot-rl reward record`: its options."""
    rec = rs.add_parser(
        "record",
        help="record successful and failing sim episodes that keep running past success",
        description="Record sim episodes for classifier training: the env does not terminate on success, so frames "
        "showing the solved task are stored; behaviours (expert, low_lift, no_grasp, drop, random) alternate per --mix. "
        "Per-step success is the simulation's ground truth.",
        epilog="example: robot-rl reward record --task pick_cube --episodes 20 --out data/reward_pick",
    )
    rec.add_argument("--task", default="pick_cube", help="sim task (default pick_cube)")
    rec.add_argument("--episodes", type=positive_int, default=20, metavar="N", help="episodes to record (default 20)")
    rec.add_argument("--out", type=Path, required=True, metavar="DIR", help="episode store (created or appended to)")
    rec.add_argument(
        "--mix",
        type=_csv,
        default=("expert", "low_lift", "expert", "no_grasp", "drop", "random"),
        help="behaviours taken in turn: expert, low_lift, no_grasp, drop, random (default expert,low_lift,expert,no_grasp,drop,random)",
    )
    rec.add_argument(
        "--episode-steps", type=positive_int, default=40, metavar="T", help="steps per episode (default 40)"
    )
    rec.add_argument("--cameras", type=_csv, default=("front", "wrist"), help="cameras (default front,wrist)")
    rec.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    rec.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    rec.set_defaults(func=_record)


def _register_label(rs) -> None:
    """`robot-rl reward label`: its options."""
    lab = rs.add_parser(
        "label",
        help="review and edit per-frame success labels of a store",
        description="Print one line per episode (frames, positives, first positive frame, label flips), optionally "
        "write a contact sheet of the frames around every flip, and edit labels with --set. Labels are derived from "
        "the store's success key (--source sim: frame t shows row t-1's success, as the recorder writes it; "
        "--source teleop: the row where the teleop success key was pressed, by a person or the scripted operator, "
        "and after) and edits are kept in STORE/reward_labels.json.",
        epilog="example: robot-rl reward label data/reward_pick --set 3:17-39=1 --sheet review.png",
    )
    lab.add_argument("store", type=Path, metavar="STORE", help="episode store")
    lab.add_argument("--source", choices=LABEL_SOURCES, help="how labels derive from the success key (saved)")
    lab.add_argument(
        "--set",
        dest="edits",
        action="append",
        default=[],
        metavar="EP:FROM-TO=V",
        help="set frames FROM..TO (inclusive) of episode EP to V (0 or 1); repeatable",
    )
    lab.add_argument("--sheet", type=Path, metavar="PNG", help="write a contact sheet of frames around label flips")
    lab.add_argument(
        "--episodes", type=lambda t: [int(x) for x in _csv(t)], metavar="I,J", help="episodes in the sheet"
    )
    lab.add_argument("--context", type=int, default=3, metavar="K", help="frames either side of a flip (default 3)")
    lab.set_defaults(func=_label)


def _register_train(rs) -> None:
    """`robot-rl reward train`: its options."""
    tr = rs.add_parser(
        "train",
        help="train a success classifier on labelled stores",
        description="Train an image classifier (small conv, or frozen ResNet-10, + MLP head) or a VLM classifier "
        "(--kind vlm: SigLIP/CLIP from a local path or the HF cache, zero-shot or with a linear head) on the stores' "
        "labelled frames. Episodes are split into train and held-out; the threshold is the lowest whose held-out "
        "precision stays >= --target-precision. Writes classifier.safetensors + classifier.json, report.json and "
        "pr_curve.png to --out.",
        epilog="example: robot-rl reward train --data data/reward_pick --out runs/reward_pick",
    )
    tr.add_argument("--data", type=_csv, required=True, metavar="STORE[,STORE]", help="labelled episode stores")
    tr.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    tr.add_argument("--kind", choices=("image", "vlm"), default="image", help="classifier kind (default image)")
    tr.add_argument("--cameras", type=_csv, default=("front", "wrist"), help="cameras to read (default front,wrist)")
    tr.add_argument("--encoder", choices=("conv", "resnet10"), default="conv", help="image encoder (default conv)")
    tr.add_argument(
        "--encoder-weights", metavar="PATH", help="resnet10: pretrained weights (local path or cached HF repo id)"
    )
    tr.add_argument("--image-size", type=int, default=64, metavar="PX", help="input size (default 64)")
    tr.add_argument("--steps", type=positive_int, help="gradient steps (default 600; VLM head: 300)")
    tr.add_argument("--batch-size", type=positive_int, default=64, help="frames per step (default 64)")
    tr.add_argument("--target-precision", type=float, default=0.95, metavar="P", help="threshold target (default 0.95)")
    tr.add_argument(
        "--held-out", type=float, default=0.25, metavar="F", help="fraction of episodes held out (default 0.25)"
    )
    tr.add_argument(
        "--skip-flip-frames",
        type=int,
        default=0,
        metavar="K",
        help="leave held-out frames within K of a label flip out of threshold calibration (default 0)",
    )
    tr.add_argument(
        "--prefer-half",
        action="store_true",
        help="threshold 0.5 when it lies in the calibrated gap (default: halfway in logit space)",
    )
    tr.add_argument("--source", choices=LABEL_SOURCES, help="label source (default: each store's saved choice)")
    tr.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    tr.add_argument("--vlm", metavar="PATH", help="--kind vlm: model directory or cached HF repo id (never downloaded)")
    tr.add_argument(
        "--prompt",
        default="a robot gripper holding a red cube lifted above the table",
        help="--kind vlm: text of success (zero-shot score and head initialisation)",
    )
    tr.add_argument("--zero-shot", action="store_true", help="--kind vlm: no training, only calibrate the threshold")
    tr.add_argument("--device", default="cpu", help="torch device (default cpu)")
    tr.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    tr.set_defaults(func=_train)


def _register_eval(rs) -> None:
    """`robot-rl reward eval`: its options."""
    ev = rs.add_parser(
        "eval",
        help="precision, recall and latency of a trained classifier on labelled stores",
        description="Evaluate a classifier directory on every frame of --data at its saved threshold (and at 0.5), "
        "and time single-frame inference (p50/p99 ms). Use stores not seen in training.",
        epilog="example: robot-rl reward eval runs/reward_pick --data data/reward_pick_test",
    )
    ev.add_argument("classifier", type=Path, metavar="DIR", help="output directory of `robot-rl reward train`")
    ev.add_argument("--data", type=_csv, required=True, metavar="STORE[,STORE]", help="labelled episode stores")
    ev.add_argument("--out", type=Path, metavar="DIR", help="write eval_report.json and eval_pr_curve.png here")
    ev.add_argument("--threshold", type=float, help="override the saved threshold")
    ev.add_argument(
        "--latency-calls", type=int, default=200, metavar="N", help="timed single-frame calls (default 200)"
    )
    ev.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads for inference (default 1, as the node)"
    )
    ev.add_argument("--source", choices=LABEL_SOURCES, help="label source (default: each store's saved choice)")
    ev.set_defaults(func=_eval)


def _record(args: argparse.Namespace) -> int:
    checks.check_task(args.task)
    checks.check_writable_dir(args.out)
    from robot_rl.reward.collect import CollectConfig, collect_reward_data

    counts = collect_reward_data(
        CollectConfig(
            task=args.task,
            out=args.out,
            episodes=args.episodes,
            mix=args.mix,
            episode_steps=args.episode_steps,
            cameras=args.cameras,
            seed=args.seed,
            progress=args.progress,
        )
    )
    print(
        f"recorded {counts['episodes']} episodes ({counts['steps']} steps, {counts['success_steps']} with ground-truth "
        f"success; {counts['by_behaviour']}) to {args.out}; it holds {counts['store_episodes']} episodes"
    )
    return 0


def _label(args: argparse.Namespace) -> int:
    checks.open_store(args.store, "store")
    from robot_rl.data.store import EpisodeStore, StoreError
    from robot_rl.reward.labels import StoreLabels, format_table, parse_edit

    try:
        labels = StoreLabels(EpisodeStore.open(args.store), args.source)
        for text in args.edits:
            labels.add(parse_edit(text))
    except (StoreError, ValueError) as e:
        raise RunError(str(e)) from e
    if args.edits or args.source:
        print(f"saved {len(labels.edits)} edits (source {labels.source}) to {labels.save()}")
    print(format_table(labels.table()))
    if args.sheet:
        from robot_rl.reward.sheet import contact_sheet

        info = contact_sheet(labels, args.sheet, args.episodes, args.context)
        print(f"contact sheet: {args.sheet} ({info['rows']} rows, episodes {info['episodes']})")
    return 0


def _train(args: argparse.Namespace) -> int:
    for path in args.data:
        checks.open_store(path, "--data")
    checks.check_device(args.device)
    checks.check_writable_dir(args.out)
    from robot_rl.data.store import StoreError

    try:
        if args.kind == "vlm":
            from robot_rl.reward.vlm import VLMTrainConfig, train_vlm_classifier

            if not args.vlm:
                raise UsageError("--kind vlm needs --vlm PATH (a local model directory or a cached HF repo id)")
            report = train_vlm_classifier(
                VLMTrainConfig(
                    data=args.data,
                    out=args.out,
                    model=args.vlm,
                    cameras=args.cameras,
                    prompt=args.prompt,
                    zero_shot=args.zero_shot,
                    steps=args.steps or 300,
                    target_precision=args.target_precision,
                    held_out_fraction=args.held_out,
                    label_source=args.source,
                    seed=args.seed,
                    device=args.device,
                    progress=args.progress,
                )
            )
        else:
            from robot_rl.reward.classifier import ClassifierConfig
            from robot_rl.reward.train import TrainConfig, train_classifier

            report = train_classifier(
                TrainConfig(
                    data=args.data,
                    out=args.out,
                    steps=args.steps or 600,
                    batch_size=args.batch_size,
                    classifier=ClassifierConfig(
                        cameras=args.cameras,
                        encoder=args.encoder,
                        encoder_weights=args.encoder_weights,
                        image_size=args.image_size,
                    ),
                    target_precision=args.target_precision,
                    held_out_fraction=args.held_out,
                    label_source=args.source,
                    calibration_skip_flip_frames=args.skip_flip_frames,
                    calibration_prefer_half=args.prefer_half,
                    seed=args.seed,
                    device=args.device,
                    progress=args.progress,
                )
            )
    except (StoreError, ValueError, FileNotFoundError) as e:
        raise RunError(str(e)) from e
    at = report["held_out_at_threshold"]
    print(
        f"held-out ({report['frames']['held_out']} frames, {report['episodes']['held_out']} episodes): threshold "
        f"{report['threshold']:.4f}, precision {at['precision']:.3f}, recall {at['recall']:.3f} "
        f"(target precision {report['target_precision']}{'' if report['target_met'] else ' NOT met'}); "
        f"saved to {args.out}"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    checks.check_exists(args.classifier, "classifier", "directory")
    for path in args.data:
        checks.open_store(path, "--data")
    if args.out is not None:
        checks.check_writable_dir(args.out)
    import torch

    from robot_rl.data.store import StoreError
    from robot_rl.reward.evaluate import evaluate

    torch.set_num_threads(args.threads)
    try:
        report = evaluate(
            args.classifier,
            list(args.data),
            args.out,
            latency_calls=args.latency_calls,
            label_source=args.source,
            threshold=args.threshold,
        )
    except (StoreError, ValueError, FileNotFoundError) as e:
        raise RunError(str(e)) from e
    print(json.dumps(report, indent=1))
    return 0
