"""Which format a data path holds (an episode store, a LeRobotDataset v3.0 directory, a rosbag2 MCAP bag), and any
of them opened as an episode store for the commands that read stores (`robot-rl data view`).

A LeRobot directory or a bag is read by its import (`robot_rl.data.lerobot_import`, `robot_rl.data.mcap_import`,
the bag with the recording actor's settings) into a store in a temporary directory that is removed afterwards, so
what a viewer shows is exactly what `robot-rl data import` would store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STORE, LEROBOT, ROSBAG2 = "store", "lerobot", "rosbag2"
_SUFFIXES = (".zarr", ".mcap")  # left out of a path's display name


def source_format(path: str | os.PathLike) -> str:
    """ROSBAG2 for a `.mcap` file or a bag directory (metadata.yaml), LEROBOT for a directory with
    meta/info.json, else STORE (whatever else it is, opening it as a store says what is wrong)."""
    path = Path(path)
    if path.suffix == ".mcap" or (path.is_dir() and (path / "metadata.yaml").is_file()):
        return ROSBAG2
    if path.is_dir() and (path / "meta" / "info.json").is_file():
        return LEROBOT
    return STORE


def display_name(path: str | os.PathLike) -> str:
    """The path's last part without .zarr / .mcap: the stem of default output names."""
    name = Path(path).resolve().name
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


@contextmanager
def opened_as_store(path: str | os.PathLike) -> Iterator[tuple[Path, str]]:
    """(a store's path, the source's format): the store itself, or a temporary store imported from a LeRobot
    directory or a bag (removed on exit). Raises what the import raises (LeRobotFormatError, McapFormatError)."""
    fmt = source_format(path)
    if fmt == STORE:
        yield Path(path), fmt
        return
    with tempfile.TemporaryDirectory(prefix="robot-rl-read-") as tmp:
        store = Path(tmp) / f"{display_name(path)}.zarr"
        if fmt == LEROBOT:
            from robot_rl.data.lerobot_import import import_lerobot

            import_lerobot(path, store)
        else:
            from robot_rl.data.mcap_import import import_rosbag2

            import_rosbag2(path, store)
        yield store, fmt
