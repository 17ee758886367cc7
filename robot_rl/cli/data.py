"""robot-rl data info | view | repair | export | import: inspect an episode store, rebuild a lost index, and move
episodes to and from other formats (LeRobotDataset v3.0)."""

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

    export = data_sub.add_parser(
        "export",
        help="write a store in another format: a LeRobotDataset v3.0 directory (parquet + mp4)",
        description="Write every episode of a store as a LeRobotDataset v3.0 directory, as LeRobot 0.4.x reads it: "
        "observation.state, observation.images.<camera> (H.264 mp4, yuv444p), action, next.reward, next.done, "
        "success, is_intervention, policy/base actions and the task string; the store's metadata goes in "
        "meta/info.json so `data import` gives the store back.",
    )
    export.add_argument("store", type=Path, metavar="STORE", help="episode store directory")
    export.add_argument("--format", choices=["lerobot"], required=True, help="output format")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="new (or empty) output directory")
    export.add_argument(
        "--fps", type=positive_float, help="frames per second, a whole number (default: the store's control_rate_hz)"
    )
    export.set_defaults(func=_export)

    imp = data_sub.add_parser(
        "import",
        help="read another format into a new store: a LeRobotDataset v3.0 directory",
        description="Read a LeRobotDataset v3.0 directory into a new episode store. A dataset made by `data export` "
        "comes back with every key and its metadata; one made by LeRobot maps observation.state, "
        "observation.images.*, action, next.reward and next.done, and a layout that cannot map is refused.",
    )
    imp.add_argument("source", type=Path, metavar="SRC", help="the dataset directory")
    imp.add_argument("--format", choices=["lerobot"], required=True, help="input format")
    imp.add_argument("--out", type=Path, required=True, metavar="STORE", help="new episode store directory")
    imp.set_defaults(func=_import)


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


def _export(args: argparse.Namespace) -> int:
    from robot_rl.data.lerobot_export import export_lerobot
    from robot_rl.data.lerobot_format import LeRobotFormatError
    from robot_rl.errors import RunError

    try:
        result = export_lerobot(args.store, args.out, fps=args.fps)  # StoreError: one line
    except LeRobotFormatError as e:
        raise RunError(str(e)) from None
    cams = ", ".join(result.cameras) or "none"
    print(
        f"wrote {result.out}: LeRobotDataset v3.0, {result.episodes} episodes, {result.frames} frames at {result.fps} "
        f"fps, cameras {cams}, {result.nbytes / 2**20:.1f} MiB"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from robot_rl.data.lerobot_format import LeRobotFormatError
    from robot_rl.data.lerobot_import import import_lerobot
    from robot_rl.errors import RunError

    if not args.source.is_dir():
        raise RunError(f"{args.source} is not a directory; expected a LeRobotDataset v3.0 directory")
    if args.out.exists():
        raise RunError(f"--out {args.out} exists; the import writes a new episode store (choose a new path)")
    try:
        result = import_lerobot(args.source, args.out)  # StoreError (e.g. --out exists): one line
    except LeRobotFormatError as e:
        raise RunError(str(e)) from None
    dropped = f"; left out {', '.join(result.dropped)}" if result.dropped else ""
    cams = ", ".join(result.cameras) or "none"
    print(f"wrote {result.out}: {result.episodes} episodes, {result.steps} steps, cameras {cams}{dropped}")
    return 0
