"""Check an export with LeRobot's own reader: `python -m robot_rl.data.lerobot_check STORE DIR --peer-python PY`.

Runs `robot_rl/bench/peer_lerobot_dataset.py` in the peers venv (LeRobot 0.4.4's `LeRobotDataset` reads every
item of DIR, decoding video frames at the items' timestamps) and compares what it read with the store:
state, action, reward and the flags must be equal, each camera frame within `min_psnr_db`. Prints one JSON
line and exits 1 when anything differs. Not a unit test: the peers are never a dependency of robot_rl.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data import lerobot_format as lr
from robot_rl.data.store import EpisodeStore


def psnr_db(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio per frame of two (N, H, W, C) uint8 stacks (inf where equal)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def compare(store: EpisodeStore, read: dict[str, np.ndarray], min_psnr_db: float = 40.0) -> dict:
    """What LeRobot read (`read`: feature -> (N, ...)) against the store's rows 0..N-1; lists every mismatch."""
    n = len(read["index"])
    rows = read["index"].reshape(n).astype(int)
    problems, min_psnr = [], {}
    for key in store.spec:
        feature = lr.feature_of(key)
        if feature not in read:
            problems.append(f"LeRobot did not return {feature}")
            continue
        ours = store.get_key(key)[rows]
        theirs = read[feature].reshape(ours.shape)
        if keys.is_image_key(key):
            min_psnr[feature] = float(psnr_db(ours, theirs).min())
            if min_psnr[feature] < min_psnr_db:
                problems.append(f"{feature}: a frame at {min_psnr[feature]:.1f} dB PSNR, under {min_psnr_db} dB")
        elif not np.array_equal(
            ours.astype(theirs.dtype), theirs
        ):  # LeRobot's torch transform reads float64 as float32
            problems.append(f"{feature} differs from the store's {key}")
    done = np.logical_or(store.get_key(keys.TERMINATED), store.get_key(keys.TRUNCATED))[rows]
    if not np.array_equal(done, read[lr.DONE].reshape(n).astype(bool)):
        problems.append("next.done differs from terminated | truncated")
    return {"items": n, "min_psnr_db": min_psnr, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    from robot_rl.bench.peer import run_peer_script

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="the episode store that was exported")
    parser.add_argument("dataset", type=Path, help="the LeRobotDataset directory made by `robot-rl data export`")
    parser.add_argument("--peer-python", required=True, help="the peers venv's python (.peers-venv/bin/python)")
    parser.add_argument("--min-psnr-db", type=float, default=40.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "read.npz"
        summary = run_peer_script(
            args.peer_python, "peer_lerobot_dataset.py", ["--root", str(args.dataset), "--out", str(out)]
        )[-1]
        with np.load(out) as npz:
            read = {name.replace("|", "/"): npz[name] for name in npz.files}
    result = {"lerobot": summary, **compare(EpisodeStore.open(args.store), read, args.min_psnr_db)}
    print(json.dumps(result))
    return 1 if result["problems"] or summary["lerobot_items"] != result["items"] else 0


if __name__ == "__main__":
    sys.exit(main())
