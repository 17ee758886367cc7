"""robot-rl data info | view | repair: inspect an episode store, rebuild a lost index."""

from __future__ import annotations

import argparse
from pathlib import Path

from robot_rl.cli.checks import check_writable_file, positive_float, positive_int


def register(sub) -> None:
    data = sub.add_parser(
        "data",
        help="inspect an episode store (zarr): summary, episode videos, index repair",
        description="Inspect an episode store written by `robot-rl demos record`, `robot-rl train` or the ROS actor.",
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    info = data_sub.add_parser(
        "info",
        help="summarise a store: task, episodes, steps, success/intervention rates, keys, size on disk",
        description="Print what an episode store holds: schema, task, episode and step counts, episode length "
        "statistics, success rate (episodes with a success step), intervention rate (steps), cameras, and per "
        "key the per-step shape, dtype and compressed size.",
    )
    info.add_argument("store", type=Path, metavar="DIR", help="episode store directory")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    info.add_argument(
        "--verify",
        action="store_true",
        help="also read every chunk and check every episode's rows against the index (episode "
        "ends, clocks, source columns); fail on any damage or disagreement (slow for big stores)",
    )
    info.set_defaults(func=_info)

    repair = data_sub.add_parser(
        "repair",
        help="rebuild a store's lost episode index (meta/episode_ends) from its terminated/truncated flags",
        description="Rebuild meta/episode_ends of a store whose index is missing, unreadable or lost a chunk: an "
        "episode ends at every row with terminated or truncated set; rows after the last such row (an episode in "
        "flight when its writer died) are dropped. The old index is kept as meta/episode_ends.lost-<time>. Refuses "
        "when the flags cannot say where episodes end, when damaged chunks lie before the last episode, or while "
        "another process writes the store; does nothing to a store whose index is intact.",
    )
    repair.add_argument("store", type=Path, metavar="DIR", help="episode store directory")
    repair.set_defaults(func=_repair)

    view = data_sub.add_parser(
        "view",
        help="render one episode to mp4: cameras side by side over a reward/intervention/success strip",
        description="Write an mp4 (mp4v) of one stored episode: the cameras side by side, under them a strip "
        "of reward, is_intervention and success over the episode with a cursor at the current step.",
    )
    view.add_argument("store", type=Path, metavar="DIR", help="episode store directory")
    view.add_argument(
        "--episode", type=int, required=True, metavar="K", help="episode index (negative counts from the end)"
    )
    view.add_argument(
        "--out", type=Path, metavar="FILE.mp4", help="output video (default: ./<store name>_episode_<K>.mp4)"
    )
    view.add_argument(
        "--fps", type=positive_float, help="frames per second (default: the store's control_rate_hz, else 10)"
    )
    view.add_argument(
        "--camera-height",
        type=positive_int,
        default=256,
        metavar="PX",
        help="height each camera is scaled to (default 256)",
    )
    view.set_defaults(func=_view)


def _info(args: argparse.Namespace) -> int:
    import json

    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.summary import format_summary, summarize

    summary = summarize(EpisodeStore.open(args.store, mode="r", verify=args.verify))  # StoreError: one line
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _repair(args: argparse.Namespace) -> int:
    from robot_rl.data.store_verify import repair_index

    print(repair_index(args.store))  # StoreError (refused: why) is printed as one line by main()
    return 0


def _view(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.video import write_mp4
    from robot_rl.data.view import ViewConfig, camera_keys, episode_frames
    from robot_rl.errors import UsageError

    if args.out is not None:  # before reading anything; OpenCV picks the container from the suffix
        if args.out.suffix.lower() != ".mp4":
            raise UsageError(f"--out {args.out} must be an .mp4 file path (e.g. {args.out.with_suffix('.mp4')})")
        check_writable_file(args.out)
    store = EpisodeStore.open(args.store, mode="r")  # StoreError: one line
    try:
        episode = store.get_episode(args.episode)
    except IndexError as e:
        raise UsageError(f"--episode {args.episode}: {e}") from None
    index = args.episode % store.n_episodes
    out = args.out or Path(f"{args.store.resolve().name.removesuffix('.zarr')}_episode_{index}.mp4")
    fps = args.fps or float(store.meta.get("control_rate_hz") or 10.0)
    frames = episode_frames(episode, ViewConfig(camera_height_px=args.camera_height))
    n = write_mp4(frames, out, fps=fps)
    cams = [c.removeprefix("image_") for c in camera_keys(episode)] or ["none"]
    print(f"wrote {out}: episode {index}, {n} frames at {fps:g} fps, cameras {', '.join(cams)}")
    return 0
