"""Peer side of the LeRobot export check: LeRobot 0.4.4's own `LeRobotDataset` reads a dataset we exported.

A standalone script run by the peer's Python (`.peers-venv/bin/python peer_lerobot_dataset.py --root DIR
--out FILE.npz`); it imports only LeRobot (and what LeRobot needs). It opens the directory with
`LeRobotDataset(repo_id="local/check", root=DIR)` (no download: the files are all there), reads every
item with `dataset[i]` (video frames decoded by LeRobot's decoder at the item's timestamp), and saves
what it read as arrays in FILE.npz (one row per item, images as uint8 HWC) for our side to compare with
the store (`robot_rl.data.lerobot_check`); one JSON line on stdout summarises the dataset as LeRobot sees it.
Video frames: LeRobot decodes them with torchcodec, else with its "pyav" path through
`torchvision.io.VideoReader`. The peers venv has neither (PyPI's torchcodec is a CUDA build that does not
load beside CPU torch, and torchvision 0.28 removed VideoReader), so this script runs LeRobot's "pyav" path
(`decode_video_frames_torchvision`: seek to the keyframe, decode up to the last query, nearest frame within
tolerance_s, FrameTimestampError otherwise) over `_PyAVVideoReader`, a stand-in for the removed class
written on PyAV as torchvision 0.21 did it: every frame with its presentation time in seconds.
"""

from __future__ import annotations

import argparse
import json
import time


class _PyAVVideoReader:
    """torchvision.io.VideoReader(path, "video") as LeRobot uses it: seek(t, keyframes_only), iterate, container."""

    def __init__(self, path: str, stream: str = "video") -> None:
        import av

        self.container = av.open(path)
        self._stream = self.container.streams.video[0]
        self._frames = None

    def seek(self, time_s: float, keyframes_only: bool = False) -> None:
        self.container.seek(int(time_s / self._stream.time_base), stream=self._stream, backward=True, any_frame=False)
        self._frames = self.container.decode(self._stream)

    def __iter__(self):
        import torch

        for frame in self._frames if self._frames is not None else self.container.decode(self._stream):
            data = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
            yield {"data": data, "pts": float(frame.pts * self._stream.time_base)}


def _open_dataset(root: str):
    """LeRobot's LeRobotDataset on `root`, decoding video by its "pyav" path (see the module docstring)."""
    import torchvision
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    if not hasattr(torchvision.io, "VideoReader"):
        torchvision.io.VideoReader = _PyAVVideoReader
    return LeRobotDataset(repo_id="local/check", root=root, video_backend="pyav")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the LeRobotDataset directory")
    parser.add_argument("--out", required=True, help="npz file to write what LeRobot read")
    parser.add_argument("--max-items", type=int, default=0, help="read at most this many items (0: all)")
    args = parser.parse_args()

    import numpy as np
    import tv_cpu_shim  # noqa: F401  (must precede torchvision, which LeRobot imports)

    t0 = time.perf_counter()
    dataset = _open_dataset(args.root)
    opened_s = time.perf_counter() - t0
    n = len(dataset) if args.max_items <= 0 else min(len(dataset), args.max_items)
    rows: dict[str, list] = {}
    tasks = set()
    t0 = time.perf_counter()
    for i in range(n):
        item = dataset[i]
        tasks.add(item["task"])
        for key, value in item.items():
            if key == "task":
                continue
            array = value.numpy()
            if key in dataset.meta.camera_keys:  # float CHW in [0, 1] -> uint8 HWC
                array = (array.transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
            rows.setdefault(key, []).append(array)
    read_s = time.perf_counter() - t0
    np.savez(args.out, **{key.replace("/", "|"): np.stack(values) for key, values in rows.items()})
    summary = {
        "lerobot_items": len(dataset),
        "items_read": n,
        "episodes": dataset.num_episodes,
        "fps": dataset.fps,
        "camera_keys": list(dataset.meta.camera_keys),
        "features": sorted(dataset.features),
        "tasks": sorted(tasks),
        "stats_keys": sorted(dataset.meta.stats or {}),
        "open_s": round(opened_s, 3),
        "read_s": round(read_s, 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
