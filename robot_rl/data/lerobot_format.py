"""The LeRobotDataset v3.0 layout, as LeRobot 0.4.x reads it, and how our store's keys map onto it.

A v3.0 dataset is a directory::

    meta/info.json                          codebase_version "v3.0", fps, features, path templates, totals
    meta/stats.json                         per feature: min, max, mean, std, count, q01 q10 q50 q90 q99
    meta/tasks.parquet                      task strings (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet  one row per episode: length, tasks, where its rows and frames are
    data/chunk-000/file-000.parquet         one row per frame: every non-video feature + timestamp and indices
    videos/<key>/chunk-000/file-000.mp4     one stream per camera, episodes back to back; an episode's frames
                                            lie between its videos/<key>/from_timestamp and to_timestamp

(learned from LeRobot's `lerobot/datasets/utils.py`, `lerobot_dataset.py` and the v2.1 -> v3.0 converter; this
module is our own code and needs only pyarrow). Key mapping, store key -> feature: `state` ->
`observation.state`, `image_<cam>` -> `observation.images.<cam>` (video), `action` -> `action`, `reward` ->
`next.reward`, `terminated | truncated` -> `next.done`, `truncated` -> `next.truncated`; every other step key
keeps its name (`terminated`, `success`, `is_intervention`, `policy_action`, `base_action`, `t_capture*`), so
LeRobot's policies see only observation.* and action, and a round trip is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from robot_rl import keys

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
# LeRobot's writer defaults (files per chunk, MB per file); readers take any size
CHUNKS_SIZE, DATA_FILES_MB, VIDEO_FILES_MB = 1000, 100, 200
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's DEFAULT_QUANTILES -> stats keys q01 ... q99
META_KEY = "robot_rl_meta"  # our store's metadata, kept in info.json for an exact round trip

OBS_STATE = "observation.state"
IMAGES_PREFIX = "observation.images."
ACTION = "action"
REWARD = "next.reward"
DONE = "next.done"
TRUNCATED = "next.truncated"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")  # every frame has these
RENAMED = {keys.STATE: OBS_STATE, keys.ACTION: ACTION, keys.REWARD: REWARD, keys.TRUNCATED: TRUNCATED}


class LeRobotFormatError(ValueError):
    """A directory is not a LeRobotDataset v3.0 we can map onto an episode store (the message says why)."""


def feature_of(store_key: str) -> str:
    """The LeRobot feature name of one store key (see the module docstring)."""
    if keys.is_image_key(store_key):
        return IMAGES_PREFIX + keys.camera_of(store_key)
    return RENAMED.get(store_key, store_key)


def store_key_of(feature: str) -> str:
    """The store key of one LeRobot feature: the inverse of `feature_of`."""
    if feature.startswith(IMAGES_PREFIX):
        return keys.image_key(feature[len(IMAGES_PREFIX) :])
    inverse = {v: k for k, v in RENAMED.items()}
    return inverse.get(feature, feature)


def vector_names(meta: dict[str, Any], store_key: str, width: int) -> list[str] | None:
    """Names of a vector feature's entries from the store's layouts (`action_layout`, `obs_layout.state`)."""
    if store_key in (keys.ACTION, keys.POLICY_ACTION, keys.BASE_ACTION):
        names = list(meta.get("action_layout") or [])
    elif store_key == keys.STATE:
        names = []
        for name, size in (meta.get("obs_layout") or {}).get("state", []):
            names += [str(name)] if int(size) == 1 else [f"{name}_{i}" for i in range(int(size))]
    else:
        return None
    return names if len(names) == width else None


def feature_stats(values: np.ndarray) -> dict[str, list]:
    """LeRobot's per-feature statistics of (N, ...) values over axis 0 (bools as 0/1)."""
    return features_stats({"x": values})["x"]


def features_stats(columns: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    """`feature_stats` of several columns of one length at once: side by side in one (N, sum of widths) array,
    so the quantiles take one pass instead of one per column (every column's numbers are the same as alone)."""
    parts = {name: np.asarray(v, dtype=np.float64).reshape(len(v), -1) for name, v in columns.items()}
    x = np.concatenate(list(parts.values()), axis=1)
    whole = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0)}
    for q, v in zip(QUANTILES, np.quantile(x, QUANTILES, axis=0)):
        whole[f"q{round(q * 100):02d}"] = v
    out, at = {}, 0
    for name, part in parts.items():
        width = part.shape[1]
        out[name] = {k: v[at : at + width].tolist() for k, v in whole.items()} | {"count": [len(x)]}
        at += width
    return out


def image_histogram(frames: np.ndarray) -> np.ndarray:
    """(C, 256) counts of each level per channel of (N, H, W, C) uint8 frames: what `histogram_stats` needs, and
    summable, so a dataset's statistics are the sum of its episodes' histograms (no second pass over the pixels).

    `cv2.calcHist` over the frames as one image is ~5x faster than `np.bincount` of each strided channel, and a
    sort of every pixel took seconds per episode."""
    import cv2

    channels = frames.shape[-1]
    image = np.ascontiguousarray(frames).reshape(-1, frames.shape[-2], channels)  # (N * H, W, C)
    return np.stack([cv2.calcHist([image], [c], None, [256], [0, 256]).reshape(256) for c in range(channels)]).astype(
        np.float64
    )


def histogram_stats(hist: np.ndarray, n_frames: int) -> dict[str, list]:
    """Per-channel statistics in [0, 1] of the frames a (C, 256) `image_histogram` counted, shaped (C, 1, 1) as
    LeRobot's are; exact over every pixel, quantiles the first level whose cumulative share reaches q."""
    levels = np.arange(256, dtype=np.float64)
    count = hist.sum(axis=1)
    mean = hist @ levels / count
    std = np.sqrt(np.maximum(hist @ levels**2 / count - mean**2, 0.0))
    present = hist > 0
    cdf = np.cumsum(hist, axis=1) / count[:, None]
    stats = {
        "min": present.argmax(axis=1).astype(np.float64),
        "max": 255.0 - present[:, ::-1].argmax(axis=1),
        "mean": mean,
        "std": std,
    }
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.argmax(cdf >= q - 1e-12, axis=1).astype(np.float64)
    out = {k: [[[float(c) / 255.0]] for c in v] for k, v in stats.items()}
    out["count"] = [n_frames]
    return out


def arrow_column(values: np.ndarray) -> pa.Array:
    """One frame-table column: a scalar column for per-step scalars, a fixed-size list for (N, D) vectors."""
    values = np.ascontiguousarray(values)
    if values.ndim == 1:
        return pa.array(values)
    if values.ndim != 2:
        raise LeRobotFormatError(f"only scalar and vector features go in the frame table; got shape {values.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def column_values(column: pa.ChunkedArray | pa.Array, dtype: np.dtype, width: int | None) -> np.ndarray:
    """The inverse of `arrow_column`: (N,) for scalars, (N, width) for list columns, in `dtype`."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), -1 if width is None else width).astype(dtype, copy=False)
    return column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False))


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as pandas writes `DataFrame({"task_index": ...}, index=tasks)`: LeRobot reads it with
    `pd.read_parquet` and looks tasks up by the index, so the pandas metadata naming the index column is needed."""
    index_col = "__index_level_0__"
    pandas_meta = {
        "index_columns": [index_col],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": None, "field_name": index_col, "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), index_col: pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def task_strings(table: pa.Table) -> list[str]:
    """Task strings by task_index from meta/tasks.parquet (the pandas index column, or a `task` column)."""
    pandas_meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    names = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)] + ["task", "__index_level_0__"]
    column = next((c for c in names if c in table.column_names), None)
    if column is None or "task_index" not in table.column_names:
        raise LeRobotFormatError(
            f"{TASKS_PATH} has columns {table.column_names}; expected task_index and the task strings"
        )
    by_index = dict(zip(table["task_index"].to_pylist(), table[column].to_pylist()))
    return [str(by_index[i]) for i in sorted(by_index)]


def summary_dict(root: Path) -> dict[str, Any]:
    """What `robot-rl data info` prints of a LeRobotDataset directory: version, fps, episodes, frames, task, features."""
    import pyarrow.parquet as pq

    info = json.loads((root / INFO_PATH).read_text())
    tasks = task_strings(pq.read_table(root / TASKS_PATH)) if (root / TASKS_PATH).is_file() else []
    return {
        "path": str(root.resolve()),
        "format": f"LeRobotDataset {info.get('codebase_version')}",
        "fps": info.get("fps"),
        "episodes": info.get("total_episodes"),
        "steps": info.get("total_frames"),
        "task": "; ".join(tasks) or None,
        "features": {
            name: {"dtype": ft.get("dtype"), "shape": ft.get("shape")}
            for name, ft in (info.get("features") or {}).items()
        },
    }
