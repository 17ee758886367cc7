"""robot-rl data info | view | repair | export | import: inspect an episode store, rebuild a lost index, and move
episodes to and from other formats (LeRobotDataset v3.0)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from robot_rl.cli.checks import check_writable_file, positive_float, positive_int


def register(sub) -> None:
    """`robot-rl data` and its subcommands, one parser-building function each."""
    data = sub.add_parser(
        "data",
        help="inspect an episode store (zarr): summary, episode videos, index repair",
        description="Inspect an episode store written by `robot-rl demos record`, `robot-rl train` or the ROS actor.",
    )
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    for add_parser in (_add_info, _add_repair, _add_view, _add_export, _add_import):
        add_parser(data_sub)


def _add_info(data_sub) -> None:
    info = data_sub.add_parser(
        "info",
        help="summarise a store: task, episodes, steps, success/intervention rates, keys, size on disk",
        description="Print what an episode store holds: schema, task, episode and step counts, episode length "
        "statistics, success rate (episodes with a success step), intervention rate (steps), cameras, and per "
        "key the per-step shape, dtype and compressed size.",
    )
    info.add_argument(
        "store", type=Path, metavar="PATH", help="episode store directory, LeRobotDataset v3.0 directory or MCAP bag"
    )
    info.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    info.add_argument(
        "--verify",
        action="store_true",
        help="also read every chunk and check every episode's rows against the index (episode "
        "ends, clocks, source columns); fail on any damage or disagreement (slow for big stores)",
    )
    info.set_defaults(func=_info)


def _add_repair(data_sub) -> None:
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


def _add_view(data_sub) -> None:
    view = data_sub.add_parser(
        "view",
        help="render one episode to mp4 (cameras over a reward/intervention/success strip), or episodes to Rerun",
        description="Write an mp4 (mp4v) of one stored episode: the cameras side by side, under them a strip "
        "of reward, is_intervention and success over the episode with a cursor at the current step. With --rerun, "
        "log episodes to a Rerun recording instead: cameras, executed vs policy action per dimension, reward, "
        "interventions, success and episode boundaries on one timeline (the store's rows), saved as an .rrd file "
        "(open it with `rerun FILE.rrd`) or streamed to a running viewer (--connect). A LeRobotDataset v3.0 "
        "directory or an MCAP bag is first read by its import (the bag with the recording actor's settings) into a "
        "temporary store.",
    )
    view.add_argument(
        "store",
        type=Path,
        metavar="PATH",
        help="episode store directory, LeRobotDataset v3.0 directory or MCAP bag (read by its import)",
    )
    view.add_argument(
        "--episode", type=int, metavar="K", help="episode index for the mp4 (negative counts from the end)"
    )
    view.add_argument("--rerun", action="store_true", help="log to a Rerun recording (.rrd) instead of an mp4")
    view.add_argument("--episodes", metavar="LIST", help="with --rerun: episodes to log, e.g. 0,3,5-9 (default: all)")
    view.add_argument(
        "--save", type=Path, metavar="FILE.rrd", help="with --rerun: the .rrd to write (default: ./<store name>.rrd)"
    )
    view.add_argument(
        "--connect",
        metavar="ADDR",
        help="with --rerun: stream to the Rerun viewer at ADDR (e.g. rerun+http://127.0.0.1:9876/proxy); "
        "also saves when --save is given",
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


def _add_export(data_sub) -> None:
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


def _add_import(data_sub) -> None:
    imp = data_sub.add_parser(
        "import",
        help="read another format into a new store: a LeRobotDataset v3.0 directory or a rosbag2 MCAP bag",
        description="Read a LeRobotDataset v3.0 directory into a new episode store. A dataset made by `data export` "
        "comes back with every key and its metadata; one made by LeRobot maps observation.state, "
        "observation.images.*, action, next.reward and next.done, and a layout that cannot map is refused. A "
        "rosbag2 MCAP bag of a robot's topics becomes episodes as the actor node would have stored them: its own "
        "steps where the actor's actor/step topic was recorded, else observations resampled at the control rate.",
    )
    imp.add_argument(
        "source", type=Path, metavar="SRC", help="the dataset directory, or the .mcap file / bag directory"
    )
    imp.add_argument("--format", choices=["lerobot", "rosbag2"], required=True, help="input format")
    imp.add_argument("--out", type=Path, required=True, metavar="STORE", help="new episode store directory")
    bag = imp.add_argument_group("rosbag2 (defaults: the recording actor's parameters, else the actor's defaults)")
    bag.add_argument("--topics", nargs="+", metavar="TOPIC", help="read only these topics of the bag (default: all)")
    bag.add_argument("--namespace", metavar="NS", help="the robot's namespace, e.g. /robot_1 (default: found)")
    bag.add_argument(
        "--segment-on",
        choices=["markers", "success"],
        help="episodes begin and end at the actor's actor/episode markers (default), or end where task/success "
        "turns true and begin once it is false again (observations resampled)",
    )
    bag.add_argument(
        "--episode-s", type=positive_float, metavar="S", help="episodes of S seconds each (observations resampled)"
    )
    bag.add_argument("--task", help="task of the observation layout (pick_cube, peg_insert)")
    bag.add_argument("--obs-mode", choices=["state", "pixels"], help="observation mode of the layout")
    bag.add_argument("--cameras", nargs="+", metavar="CAM", help="cameras of a pixels observation")
    bag.add_argument("--image-size", type=positive_int, metavar="PX", help="square image side of the observation")
    bag.add_argument("--control-rate-hz", type=positive_float, metavar="HZ", help="steps per second")
    bag.add_argument(
        "--max-staleness-s", type=positive_float, metavar="S", help="an input older than this pauses the episode"
    )
    bag.add_argument("--max-episode-steps", type=positive_int, metavar="N", help="steps before truncation")
    imp.set_defaults(func=_import)


def _info(args: argparse.Namespace) -> int:
    import json

    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.summary import format_summary, summarize

    other = _other_format_summary(args.store)
    if other is not None:
        print(json.dumps(other, indent=2) if args.json else _format_other(other))
        return 0
    summary = summarize(EpisodeStore.open(args.store, mode="r", verify=args.verify))  # StoreError: one line
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _other_format_summary(path: Path) -> dict | None:
    """A LeRobotDataset v3.0 directory's or an MCAP bag's summary; None for anything else (an episode store)."""
    from robot_rl.data.formats import LEROBOT, ROSBAG2, source_format
    from robot_rl.errors import RunError

    fmt = source_format(path)
    try:
        if fmt == ROSBAG2:
            from robot_rl.data import mcap_format

            return mcap_format.summary_dict(mcap_format.read_summary(path))
        if fmt == LEROBOT:
            from robot_rl.data.lerobot_format import summary_dict

            return summary_dict(path)
    except ValueError as e:  # McapFormatError, LeRobotFormatError: one line
        raise RunError(str(e)) from None
    return None


def _format_other(s: dict) -> str:
    lines = [f"{'path':<16} {s['path']}", f"{'format':<16} {s['format']}"]
    for key in ("episodes", "episodes_discarded", "steps", "fps", "messages", "duration_s", "task"):
        if s.get(key) is not None:
            lines.append(f"{key:<16} {s[key]}")
    for topic, t in (s.get("topics") or {}).items():
        lines.append(f"{'topic':<16} {topic}  {t['type']}  {t['messages']} messages")
    for name, f in (s.get("features") or {}).items():
        lines.append(f"{'feature':<16} {name}  {f['dtype']} {f['shape']}")
    return "\n".join(lines)


def _repair(args: argparse.Namespace) -> int:
    from robot_rl.data.store_verify import repair_index

    print(repair_index(args.store))  # StoreError (refused: why) is printed as one line by main()
    return 0


def _view(args: argparse.Namespace) -> int:
    if args.rerun:
        return _view_rerun(args)
    from robot_rl.data.formats import display_name
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.video import write_mp4
    from robot_rl.data.view import ViewConfig, camera_keys, episode_frames
    from robot_rl.errors import UsageError

    if args.episode is None:
        raise UsageError("data view needs --episode K for an mp4, or --rerun [--episodes LIST] for a Rerun recording")
    if args.out is not None:  # before reading anything; OpenCV picks the container from the suffix
        if args.out.suffix.lower() != ".mp4":
            raise UsageError(f"--out {args.out} must be an .mp4 file path (e.g. {args.out.with_suffix('.mp4')})")
        check_writable_file(args.out)
    with _opened_as_store(args.store) as (path, fmt):
        store = EpisodeStore.open(path, mode="r")  # StoreError: one line
        try:
            episode = store.get_episode(args.episode)
        except IndexError as e:
            raise UsageError(f"--episode {args.episode}: {e}") from None
        index = args.episode % store.n_episodes
        out = args.out or Path(f"{display_name(args.store)}_episode_{index}.mp4")
        fps = args.fps or float(store.meta.get("control_rate_hz") or 10.0)
        frames = episode_frames(episode, ViewConfig(camera_height_px=args.camera_height))
        n = write_mp4(frames, out, fps=fps)
    cams = [c.removeprefix("image_") for c in camera_keys(episode)] or ["none"]
    print(f"wrote {out}: episode {index}, {n} frames at {fps:g} fps, cameras {', '.join(cams)}{_read_as(fmt)}")
    return 0


def _view_rerun(args: argparse.Namespace) -> int:
    from robot_rl.data.formats import display_name
    from robot_rl.data.store import EpisodeStore
    from robot_rl.errors import UsageError

    if args.episode is not None or args.out is not None:
        raise UsageError("--episode and --out make an mp4; with --rerun give --episodes LIST and --save FILE.rrd")
    if args.save is not None and args.save.suffix != ".rrd":
        raise UsageError(f"--save {args.save} must be an .rrd file path (e.g. {args.save.with_suffix('.rrd')})")
    try:
        from robot_rl.viz.episodes import parse_episodes, view_store
    except ImportError as e:
        raise UsageError(
            f"--rerun needs rerun-sdk ({e}); install the interop extra: pip install 'robot_rl[interop]'"
        ) from None
    default = Path(f"{display_name(args.store)}.rrd")
    save = args.save if args.save is not None or args.connect else default
    if save is not None:
        check_writable_file(save, option="--save")
    with _opened_as_store(args.store) as (path, fmt):
        n_episodes = EpisodeStore.open(path, mode="r").n_episodes  # StoreError: one line
        try:
            episodes = parse_episodes(args.episodes, n_episodes)
        except ValueError as e:
            raise UsageError(f"--episodes: {e}") from None
        if not episodes:
            raise UsageError(f"{args.store} holds no episodes to view")
        result = view_store(path, episodes, save=save, connect=args.connect)
    where = " and ".join(([str(save)] if save else []) + ([f"the viewer at {args.connect}"] if args.connect else []))
    cams = ", ".join(result.cameras) or "none"
    print(
        f"wrote {where}: episodes {args.episodes or 'all'} ({len(result.episodes)}), {result.steps} steps, "
        f"cameras {cams}{_read_as(fmt)}"
    )
    return 0


@contextmanager
def _opened_as_store(source: Path) -> Iterator[tuple[Path, str]]:
    """`robot_rl.data.formats.opened_as_store`, a LeRobot directory or a bag that cannot be read said in one line."""
    from robot_rl.data.formats import ROSBAG2, opened_as_store, source_format
    from robot_rl.errors import RunError

    try:
        with opened_as_store(source) as opened:
            yield opened
    except ValueError as e:  # LeRobotFormatError, McapFormatError (a store's errors are StoreError, not these)
        hint = ""
        if source_format(source) == ROSBAG2:
            hint = f"; or import it with options (robot-rl data import {source} --format rosbag2 ...) and view that"
        raise RunError(f"{e}{hint}") from None


def _read_as(fmt: str) -> str:
    from robot_rl.data.formats import LEROBOT, STORE

    if fmt == STORE:
        return ""
    return f" (read by the {'LeRobotDataset' if fmt == LEROBOT else 'rosbag2'} import)"


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

    if args.out.exists():
        raise RunError(f"--out {args.out} exists; the import writes a new episode store (choose a new path)")
    if args.format == "rosbag2":
        return _import_bag(args)
    if not args.source.is_dir():
        raise RunError(f"{args.source} is not a directory; expected a LeRobotDataset v3.0 directory")
    try:
        result = import_lerobot(args.source, args.out)  # StoreError (e.g. --out exists): one line
    except LeRobotFormatError as e:
        raise RunError(str(e)) from None
    dropped = f"; left out {', '.join(result.dropped)}" if result.dropped else ""
    cams = ", ".join(result.cameras) or "none"
    print(f"wrote {result.out}: {result.episodes} episodes, {result.steps} steps, cameras {cams}{dropped}")
    return 0


BAG_SETTINGS = ("task", "obs_mode", "cameras", "image_size", "control_rate_hz", "max_staleness_s", "max_episode_steps")


def _import_bag(args: argparse.Namespace) -> int:
    from robot_rl.data.mcap_format import McapFormatError
    from robot_rl.data.mcap_import import import_rosbag2
    from robot_rl.errors import RunError

    settings = {k: getattr(args, k) for k in BAG_SETTINGS if getattr(args, k) is not None}
    try:
        r = import_rosbag2(
            args.source,
            args.out,
            settings=settings,
            topics=args.topics,
            namespace=args.namespace,
            segment_on=args.segment_on,
            episode_s=args.episode_s,
        )
    except McapFormatError as e:
        raise RunError(str(e)) from None
    refused = f"; refused {sum(r.refused.values())} messages ({', '.join(r.refused)})" if r.refused else ""
    paused = f", {r.paused_ticks} ticks paused (stale inputs)" if r.paused_ticks else ""
    print(
        f"wrote {r.out}: {r.episodes} episodes, {r.steps} steps from {r.namespace} ({r.mode}{paused}), "
        f"cameras {', '.join(r.cameras) or 'none'}{refused}"
    )
    return 0
