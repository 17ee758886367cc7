"""Peer side of the "made by LeRobot" check: LeRobot 0.4.4's own writer builds a LeRobotDataset v3.0.

A standalone script run by the peer's Python (`.peers-venv/bin/python peer_lerobot_write.py --episodes FILE.npz
--spec FILE.json --root DIR`); it imports only LeRobot (and what LeRobot needs). FILE.json holds the dataset's
`fps`, `task`, `robot_type` and LeRobot `features` (with `use_videos`); FILE.npz one array per feature over all
frames (images as uint8 HWC) and `episode_ends` (cumulative frame counts). The script records them as a LeRobot
user would: `LeRobotDataset.create(...)`, one `add_frame` per step (the task string with it), `save_episode()`
at each episode end (LeRobot writes the parquet files and encodes each camera's video with its default codec,
SVT-AV1 yuv420p, through PyAV), then `finalize()`. One JSON line on stdout summarises what LeRobot wrote.
Our side (`robot_rl.data.lerobot_peer_made`) makes the inputs and imports the result.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", required=True, help="npz: one array per feature, and episode_ends")
    parser.add_argument("--spec", required=True, help="json: fps, task, robot_type, features, use_videos")
    parser.add_argument("--root", required=True, help="the dataset directory to create (must not exist)")
    args = parser.parse_args()

    import numpy as np
    import tv_cpu_shim  # noqa: F401  (must precede torchvision, which LeRobot imports)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    with open(args.spec) as f:
        spec = json.load(f)
    # LeRobot compares a frame's shape (a tuple) with the feature's: shapes must be tuples, as its own code writes
    features = {name: {**ft, "shape": tuple(ft["shape"])} for name, ft in spec["features"].items()}
    data = dict(np.load(args.episodes))
    ends = data.pop("episode_ends").tolist()
    t0 = time.perf_counter()
    dataset = LeRobotDataset.create(
        repo_id="local/made-by-lerobot",
        fps=int(spec["fps"]),
        features=features,
        root=args.root,
        robot_type=spec.get("robot_type"),
        use_videos=bool(spec.get("use_videos", True)),
    )
    start = 0
    for end in ends:
        for row in range(start, end):
            dataset.add_frame({name: values[row] for name, values in data.items()} | {"task": spec["task"]})
        dataset.save_episode()
        start = end
    dataset.finalize()
    summary = {
        "lerobot_episodes": dataset.meta.total_episodes,
        "lerobot_frames": dataset.meta.total_frames,
        "video_keys": list(dataset.meta.video_keys),
        "codebase_version": dataset.meta.info["codebase_version"],
        "write_s": round(time.perf_counter() - t0, 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
