"""A LeRobotDataset made by LeRobot itself, imported and trained from:
`python -m robot_rl.data.lerobot_peer_made STORE --work DIR --peer-python PY [--train-steps N]`.

1. The episodes of STORE (e.g. scripted demos) are handed to `robot_rl/bench/peer_lerobot_write.py` in the peers
   venv, where LeRobot 0.4.4's writer records them as its users do (`LeRobotDataset.create`, `add_frame`,
   `save_episode`, `finalize`): `observation.state`, `action`, `next.reward`, `next.done` and, in a pixel store,
   each camera as a `video` feature (LeRobot's own encoder: SVT-AV1, yuv420p). Nothing of ours is in the files.
2. `robot_rl.data.lerobot_import.import_lerobot` reads DIR/lerobot into the store DIR/imported.zarr; state,
   action and reward must equal STORE's, terminated the episode ends, every frame ≥ `--min-psnr-db`.
3. With `--train-steps N`, `robot-rl train --task T --demos DIR/imported.zarr --steps N` must start, take the
   demos and train (updates > 0).

Prints one JSON line; exits 1 on any difference. Not a unit test: the peers are never a dependency of robot_rl
(`tests/test_data_lerobot.py` builds LeRobot's layout without LeRobot).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from robot_rl import keys
from robot_rl.data import lerobot_format as lr
from robot_rl.data.lerobot_check import psnr_db
from robot_rl.data.store import EpisodeStore


def lerobot_inputs(store: EpisodeStore) -> tuple[dict, dict[str, np.ndarray]]:
    """(spec for the peer: fps, task, features; arrays per feature over all frames, and episode_ends)."""
    meta = store.meta
    features, data = {}, {"episode_ends": store.episode_ends}
    for key in (keys.STATE, keys.ACTION):
        values = store.get_key(key).astype(np.float32)
        features[lr.feature_of(key)] = {
            "dtype": "float32",
            "shape": [values.shape[1]],
            "names": lr.vector_names(meta, key, values.shape[1]),
        }
        data[lr.feature_of(key)] = values
    for key, spec in store.spec.items():
        if keys.is_image_key(key):
            features[lr.feature_of(key)] = {
                "dtype": "video",
                "shape": list(spec.step_shape),
                "names": ["height", "width", "channels"],
            }
            data[lr.feature_of(key)] = store.get_key(key)
    features[lr.REWARD] = {"dtype": "float32", "shape": [1], "names": None}
    features[lr.DONE] = {"dtype": "bool", "shape": [1], "names": None}
    data[lr.REWARD] = store.get_key(keys.REWARD).astype(np.float32).reshape(-1, 1)
    done = np.logical_or(store.get_key(keys.TERMINATED), store.get_key(keys.TRUNCATED))
    data[lr.DONE] = done.reshape(-1, 1)
    spec = {"fps": round(float(meta.get("control_rate_hz") or 10)), "task": meta.get("task") or "task"}
    return spec | {"robot_type": "robot_rl_sim", "features": features, "use_videos": True}, data


def compare_import(source: EpisodeStore, imported: EpisodeStore, min_psnr_db: float) -> dict:
    """What our import made of LeRobot's files against the store LeRobot was given."""
    problems, psnr = [], {}
    if imported.episode_ends.tolist() != source.episode_ends.tolist():
        problems.append(f"episode ends {imported.episode_ends.tolist()} != {source.episode_ends.tolist()}")
        return {"problems": problems, "min_psnr_db": psnr}
    for key in (keys.STATE, keys.ACTION, keys.REWARD):
        if not np.array_equal(imported.get_key(key), source.get_key(key).astype(imported.spec[key].dtype)):
            problems.append(f"{key} differs")
    terminated_rows = np.flatnonzero(imported.get_key(keys.TERMINATED) | imported.get_key(keys.TRUNCATED))
    if terminated_rows.tolist() != (source.episode_ends - 1).tolist():
        problems.append("end flags are not at the episode ends")
    for key in source.spec:
        if keys.is_image_key(key):
            psnr[key] = round(float(psnr_db(source.get_key(key), imported.get_key(key)).min()), 2)
            if psnr[key] < min_psnr_db:
                problems.append(f"{key}: a frame at {psnr[key]} dB PSNR, under {min_psnr_db} dB")
    return {"problems": problems, "min_psnr_db": psnr}


def train_from(demos: Path, task: str, steps: int, run_dir: Path) -> dict:
    """A short `robot-rl train --demos` run; its last evaluation's updates and the demo transitions it loaded."""
    cmd = [str(Path(sys.executable).with_name("robot-rl")), "train", "--task", task, "--demos", str(demos)]
    cmd += ["--steps", str(steps), "--warmup-steps", str(steps // 2), "--eval-every", str(steps)]
    cmd += ["--eval-episodes", "1", "--video-episodes", "0", "--no-wandb", "--no-progress-bar", "--out", str(run_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "egl"})
    evals = run_dir / "eval.jsonl"
    last = json.loads(evals.read_text().splitlines()[-1]) if evals.is_file() else {}
    said = [line for line in proc.stdout.splitlines() if "demos" in line and "transitions" in line]
    return {"rc": proc.returncode, "updates": last.get("updates", 0), "line": said[-1] if said else proc.stderr[-300:]}


def main(argv: list[str] | None = None) -> int:
    from robot_rl.bench.peer import run_peer_script
    from robot_rl.data.lerobot_import import import_lerobot

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="episode store whose episodes LeRobot records")
    parser.add_argument("--work", type=Path, required=True, help="new directory for the dataset, store and run")
    parser.add_argument("--peer-python", required=True, help="the peers venv's python (.peers-venv/bin/python)")
    parser.add_argument("--min-psnr-db", type=float, default=30.0, help="LeRobot's AV1 yuv420p is lossier than ours")
    parser.add_argument("--train-steps", type=int, default=0, help="then train this many env steps (0: no)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=False)
    source = EpisodeStore.open(args.store, mode="r")
    spec, data = lerobot_inputs(source)
    (args.work / "spec.json").write_text(json.dumps(spec))
    np.savez(args.work / "episodes.npz", **data)
    peer_args = ["--episodes", str(args.work / "episodes.npz"), "--spec", str(args.work / "spec.json")]
    written = run_peer_script(
        args.peer_python, "peer_lerobot_write.py", peer_args + ["--root", str(args.work / "lerobot")]
    )
    imported = import_lerobot(args.work / "lerobot", args.work / "imported.zarr")
    result = {"lerobot": written[-1], "imported": {"episodes": imported.episodes, "steps": imported.steps,
              "cameras": list(imported.cameras), "dropped": list(imported.dropped)}}  # fmt: skip
    result |= compare_import(source, EpisodeStore.open(imported.out, verify=True), args.min_psnr_db)
    if args.train_steps:
        result["train"] = train_from(imported.out, spec["task"], args.train_steps, args.work / "run")
        if result["train"]["rc"] != 0 or result["train"]["updates"] <= 0:
            result["problems"].append(f"train --demos did not train: {result['train']}")
    print(json.dumps(result))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
