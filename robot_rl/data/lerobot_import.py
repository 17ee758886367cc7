"""`robot-rl data import DIR --format lerobot`: a LeRobotDataset v3.0 directory as an episode store.

The reverse of `robot_rl.data.lerobot_export` (names in `robot_rl.data.lerobot_format`). A dataset we
exported comes back with its metadata (info.json's `robot_rl_meta`) and every key; one made by LeRobot
itself maps `observation.state`, `observation.images.*` (video or image features), `action`, `next.reward`
and `next.done`, and fills the store's other step keys the way our recorder does without them:
`policy_action` = action, `base_action` = 0, `is_intervention` = False, `success` = False, terminated =
next.done (truncated at an episode end without it), `t_capture` = the frame's timestamp. A layout that
cannot map (another codebase version, an observation feature other than state and cameras, several tasks,
no action) is refused with a message naming what and why; other features (e.g.
`complementary_info.discrete_penalty`) are left out and listed in the result.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from robot_rl import keys
from robot_rl.data import lerobot_format as lr
from robot_rl.data.lerobot_video import read_frames
from robot_rl.data.store import EpisodeStore


@dataclass(frozen=True)
class ImportResult:
    out: Path
    episodes: int
    steps: int
    cameras: tuple[str, ...]
    dropped: tuple[str, ...]  # features that have no place in the store


def _read_info(root: Path) -> dict:
    if not (root / lr.INFO_PATH).is_file():
        raise lr.LeRobotFormatError(f"{root} is not a LeRobotDataset: it has no {lr.INFO_PATH}")
    info = json.loads((root / lr.INFO_PATH).read_text())
    version = info.get("codebase_version")
    if version != lr.CODEBASE_VERSION:
        raise lr.LeRobotFormatError(
            f"{root} is a LeRobotDataset {version}; this reads {lr.CODEBASE_VERSION} only (convert it with "
            "LeRobot's lerobot/datasets/v30/convert_dataset_v21_to_v30.py)"
        )
    return info


def _read_parquets(folder: Path) -> pa.Table:
    paths = sorted(folder.glob("*/*.parquet"))
    if not paths:
        raise lr.LeRobotFormatError(f"{folder} holds no chunk-*/file-*.parquet files")
    return pa.concat_tables([pq.read_table(p) for p in paths], promote_options="default")


def _plan(info: dict, root: Path) -> tuple[dict[str, str], list[str]]:
    """feature -> store key for every feature that maps, and the features left out; refuses what cannot map."""
    features = info.get("features") or {}
    if lr.ACTION not in features:
        raise lr.LeRobotFormatError(f"{root} has no 'action' feature; an episode store needs the actions taken")
    plan, dropped = {}, []
    for name, ft in features.items():
        if name in lr.INDEX_FEATURES or name == lr.DONE:
            continue
        if name.startswith(lr.IMAGES_PREFIX):
            if ft.get("dtype") not in ("video", "image") or len(ft.get("shape", [])) != 3:
                raise lr.LeRobotFormatError(
                    f"camera feature {name!r} is {ft.get('dtype')} {ft.get('shape')}; expected a video or image (H, W, 3)"
                )
            plan[name] = lr.store_key_of(name)
        elif name.startswith("observation.") and name != lr.OBS_STATE:
            raise lr.LeRobotFormatError(
                f"feature {name!r} cannot map: an episode store observes one state vector (observation.state) and "
                "cameras (observation.images.*)"
            )
        elif len(ft.get("shape", [1])) > 1 or ft.get("dtype") in ("string", "image", "video"):
            dropped.append(name)
        elif (
            name in (lr.OBS_STATE, lr.ACTION, lr.REWARD, lr.TRUNCATED)
            or lr.store_key_of(name) in keys.STEP_KEYS
            or name.startswith(keys.T_CAPTURE)
        ):
            plan[name] = lr.store_key_of(name)
        else:
            dropped.append(name)
    return plan, dropped


def _dtype(ft: dict) -> np.dtype:
    return np.dtype("bool" if ft["dtype"] == "bool" else ft["dtype"])


def _columns(frames: pa.Table, info: dict, plan: dict[str, str]) -> dict[str, np.ndarray]:
    """Every mapped non-camera feature as a store-shaped array over all frames (sorted by index)."""
    out = {}
    for name, key in plan.items():
        ft = info["features"][name]
        if ft["dtype"] in ("video", "image"):
            continue
        shape = [int(s) for s in ft["shape"]]
        vector = key in (keys.STATE, keys.ACTION, keys.POLICY_ACTION, keys.BASE_ACTION) or shape != [1]
        values = lr.column_values(frames[name], _dtype(ft), shape[0] if vector else None)
        out[key] = values.reshape(len(values), shape[0]) if vector else values.reshape(len(values))
    return out


def _camera_frames(
    root: Path, info: dict, episodes: list[dict], feature: str, fps: int, threads: int = 0
) -> list[np.ndarray]:
    """Each episode's frames of one video feature, found by presentation time in its mp4 file (`read_frames`'s
    `threads`)."""
    files: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_episode = []
    for ep in episodes:
        rel = info["video_path"].format(
            video_key=feature,
            chunk_index=ep[f"videos/{feature}/chunk_index"],
            file_index=ep[f"videos/{feature}/file_index"],
        )
        if rel not in files:
            files[rel] = read_frames(root / rel, threads)
        times, images = files[rel]
        wanted = ep[f"videos/{feature}/from_timestamp"] + np.arange(ep["length"]) / fps
        at = np.clip(np.searchsorted(times, wanted - 0.5 / fps), 0, len(times) - 1)
        late = np.abs(times[at] - wanted) > 0.5 / fps
        if late.any():
            raise lr.LeRobotFormatError(
                f"{rel}: episode {ep['episode_index']} has no frame near {wanted[late][0]:.3f} s (the video holds "
                f"{len(times)} frames up to {times[-1]:.3f} s)"
            )
        consecutive = len(at) > 0 and at[-1] - at[0] == len(at) - 1 and bool(np.all(np.diff(at) == 1))
        per_episode.append(images[at[0] : at[-1] + 1] if consecutive else images[at])  # a view: no copy
    return per_episode


def _image_column(frames: pa.Table, name: str) -> np.ndarray:
    """An `image` feature (PNG/JPEG bytes in the frame table) decoded to (N, H, W, 3) RGB."""
    import cv2

    column = frames[name].combine_chunks()
    data = column.field("bytes").to_pylist() if pa.types.is_struct(column.type) else column.to_pylist()
    return np.stack(
        [cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for b in data]
    )


def _start_decoding(pool: ThreadPoolExecutor, root: Path, info: dict, episodes: list[dict], cameras: list[str]) -> dict:
    """video feature -> the future of its episodes' frames: the cameras decode in parallel, a thread each (PyAV and
    cv2 release the GIL), while the caller reads the frame table; each decoder on one thread when there are several."""
    videos = [f for f in cameras if info["features"][f]["dtype"] == "video"]
    threads = 1 if len(videos) > 1 else 0
    return {f: pool.submit(_camera_frames, root, info, episodes, f, int(info["fps"]), threads) for f in videos}


def _images(
    decoding: dict, episodes: list[dict], frames: pa.Table, plan: dict[str, str], cameras: list[str]
) -> dict[str, list[np.ndarray]]:
    """store image key -> each episode's frames: decoded videos (`_start_decoding`) or image columns."""
    images = {}
    for feature in cameras:
        if feature in decoding:
            images[plan[feature]] = decoding[feature].result()
        else:
            whole = _image_column(frames, feature)
            images[plan[feature]] = [whole[e["dataset_from_index"] : e["dataset_to_index"]] for e in episodes]
    return images


def _store_meta(info: dict, root: Path, tasks: list[str], plan: dict[str, str], state_dim: int) -> dict:
    if lr.META_KEY in info:
        return dict(info[lr.META_KEY])
    features = info["features"]
    cameras = {
        keys.camera_of(k): {"height": features[f]["shape"][0], "width": features[f]["shape"][1]}
        for f, k in plan.items()
        if keys.is_image_key(k)
    }
    action_names = features[lr.ACTION].get("names")
    state_names = (features.get(lr.OBS_STATE) or {}).get("names")
    return {
        "task": tasks[0],
        "obs_mode": "pixels" if cameras else "state",
        "control_rate_hz": float(info["fps"]),
        "cameras": cameras,
        "action_layout": list(action_names)
        if isinstance(action_names, list)
        else [f"a{i}" for i in range(features[lr.ACTION]["shape"][0])],
        "obs_layout": {
            "state": [[str(n), 1] for n in state_names] if isinstance(state_names, list) else [["state", state_dim]]
        },
        "source": "lerobot",
        "lerobot_dataset": str(root.resolve()),
        "robot_type": info.get("robot_type"),
    }


def _complete(episode: dict[str, np.ndarray], done: np.ndarray | None, timestamp: np.ndarray) -> dict[str, np.ndarray]:
    """Fill the step keys a LeRobot dataset may lack, as our recorder would without them."""
    length = len(episode[keys.ACTION])
    episode[keys.ACTION] = episode[keys.ACTION].astype(np.float32)
    episode.setdefault(keys.REWARD, np.zeros(length, np.float32))
    episode.setdefault(keys.POLICY_ACTION, episode[keys.ACTION].copy())
    episode.setdefault(keys.BASE_ACTION, np.zeros_like(episode[keys.ACTION]))
    episode.setdefault(keys.IS_INTERVENTION, np.zeros(length, bool))
    episode.setdefault(keys.SUCCESS, np.zeros(length, bool))
    episode.setdefault(keys.T_CAPTURE, timestamp.astype(np.float64))
    truncated = episode.get(keys.TRUNCATED)
    if keys.TERMINATED not in episode:
        ended = np.zeros(length, bool) if done is None else done.astype(bool)
        episode[keys.TERMINATED] = ended & (~truncated.astype(bool) if truncated is not None else True)
    if truncated is None:
        truncated = np.zeros(length, bool)
        truncated[-1] = not episode[keys.TERMINATED][-1]  # every episode ends with a flag (store_verify)
        episode[keys.TRUNCATED] = truncated
    return episode


def import_lerobot(root: str | os.PathLike, out: str | os.PathLike) -> ImportResult:
    """Read the LeRobotDataset v3.0 at `root` into a new episode store at `out`."""
    root = Path(root)
    info = _read_info(root)
    tasks = lr.task_strings(pq.read_table(root / lr.TASKS_PATH))
    if len(tasks) != 1:
        raise lr.LeRobotFormatError(f"{root} has {len(tasks)} tasks {tasks[:3]}; an episode store holds one task")
    plan, dropped = _plan(info, root)
    episodes = sorted(_read_parquets(root / "meta" / "episodes").to_pylist(), key=lambda e: e["episode_index"])
    cameras = [f for f, k in plan.items() if keys.is_image_key(k)]
    with ThreadPoolExecutor(max_workers=max(1, len(cameras)), thread_name_prefix="decode") as pool:
        decoding = _start_decoding(pool, root, info, episodes, cameras)
        frames = _read_parquets(root / "data")
        frames = frames.take(pc.sort_indices(frames, [("index", "ascending")]))
        columns = _columns(frames, info, plan)
        done = lr.column_values(frames[lr.DONE], np.dtype(bool), None) if lr.DONE in frames.column_names else None
        timestamp = lr.column_values(frames["timestamp"], np.dtype(np.float64), None)
        images = _images(decoding, episodes, frames, plan, cameras)
    first_index = int(frames["index"][0].as_py()) if len(frames) else 0
    meta = _store_meta(info, root, tasks, plan, columns[keys.STATE].shape[1] if keys.STATE in columns else 0)
    steps = []
    for i, ep in enumerate(episodes):
        rows = slice(ep["dataset_from_index"] - first_index, ep["dataset_to_index"] - first_index)
        episode = {key: values[rows] for key, values in columns.items()}
        episode |= {key: per_episode[i] for key, per_episode in images.items()}
        steps.append(_complete(episode, None if done is None else done[rows], timestamp[rows]))
    with EpisodeStore.create(out, meta) as store:
        store.add_episodes(steps)  # one write per key (episode by episode rewrote the partly filled image chunks)
        return ImportResult(
            Path(out), store.n_episodes, store.n_steps, tuple(keys.camera_of(plan[c]) for c in cameras), tuple(dropped)
        )
