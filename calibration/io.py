"""Calibration results as versioned YAML, and their loaders (pure Python + numpy + yaml; no ROS).

Camera and actor nodes load results with `load_camera_info`, `load_transform` and `load_workspace`.
Every file carries `robot_rl_calibration_version`; a loader refuses another version, a missing field
or a wrong shape with a message naming the file and what was expected.

- intrinsics: ROS camera_info YAML (what camera_calibration_parsers reads) plus the version field
  and fit statistics;
- transforms (hand-eye): `parent`, `child`, `translation_m` [x, y, z], `quaternion_xyzw` [x, y, z, w],
  meaning the pose of `child` in `parent` (T_parent_child);
- workspace: `frame`, `low_m`, `high_m` of a `robot_rl.interfaces.WorkspaceBox`;
- tool poses (input to hand-eye and workspace teaching): `poses: [{image, translation_m, quaternion_xyzw}]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from robot_rl.interfaces import WorkspaceBox
from robot_rl_calibration.board import BoardConfig, CalibrationError
from robot_rl_calibration.intrinsics import Intrinsics
from robot_rl_calibration.transforms import T_from_pose, quat_xyzw_from_matrix

VERSION = 1
VERSION_KEY = "robot_rl_calibration_version"


@dataclass
class Transform:
    """T_parent_child: the pose of frame `child` in frame `parent`."""

    parent: str
    child: str
    T: np.ndarray  # (4, 4)
    info: dict = field(default_factory=dict)  # how it was obtained: mode, residuals, solver

    @property
    def translation_m(self) -> np.ndarray:
        return self.T[:3, 3].copy()

    @property
    def quaternion_xyzw(self) -> np.ndarray:
        return quat_xyzw_from_matrix(self.T[:3, :3])


@dataclass
class ToolPose:
    """One recorded tool pose in the robot base frame, with the image taken there (hand-eye)."""

    T_base_tool: np.ndarray  # (4, 4)
    image: str | None = None  # file name, relative to the images directory


# --- reading helpers ---------------------------------------------------------------------------
def _read(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{what} file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise CalibrationError(f"{what} file {path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise CalibrationError(f"{what} file {path} must hold a mapping of fields, got {type(raw).__name__}")
    return raw


def _check_version(raw: dict, path: Path, what: str, kind: str | None = None) -> None:
    if VERSION_KEY not in raw:
        raise CalibrationError(
            f"{what} file {path} has no {VERSION_KEY} field; it was not written by robot-rl calibrate "
            f"(expected {VERSION_KEY}: {VERSION})"
        )
    if raw[VERSION_KEY] != VERSION:
        raise CalibrationError(
            f"{what} file {path} has {VERSION_KEY}: {raw[VERSION_KEY]!r}; this version reads only {VERSION}. "
            "Re-run the calibration with this version of robot-rl"
        )
    if kind is not None and raw.get("kind") != kind:
        raise CalibrationError(f"{path} is a {raw.get('kind')!r} file, not a {kind!r} file ({what})")


def _require(raw: dict, keys: tuple[str, ...], path: Path, what: str) -> None:
    missing = [k for k in keys if k not in raw]
    if missing:
        raise CalibrationError(f"{what} file {path} lacks the fields {missing}; a complete file has {list(keys)}")


def _numbers(value, n: int, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{path}: {name} must be {n} finite numbers, got {value!r}")
    return arr


def _matrix(raw: dict, key: str, rows: int, cols: int | None, path: Path) -> np.ndarray:
    m = raw[key]
    if not isinstance(m, dict) or not {"rows", "cols", "data"} <= set(m):
        raise CalibrationError(f"{path}: {key} must be a mapping with rows, cols and data, got {m!r}")
    if m["rows"] != rows or (cols is not None and m["cols"] != cols):
        raise CalibrationError(f"{path}: {key} must be {rows}x{cols or 'N'}, got {m['rows']}x{m['cols']}")
    return _numbers(m["data"], int(m["rows"]) * int(m["cols"]), f"{key}.data", path).reshape(m["rows"], m["cols"])


def _dump(path: Path, data: dict, flow_lists: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None if flow_lists else False))
    return path


def _floats(a) -> list[float]:
    return [float(x) for x in np.asarray(a).ravel()]


# --- board -------------------------------------------------------------------------------------
def load_board(path: Path) -> BoardConfig:
    return BoardConfig.from_dict(_read(path, "board"), source=str(path))


def save_board(path: Path, board: BoardConfig) -> Path:
    return _dump(path, board.to_dict(), flow_lists=False)


# --- intrinsics (ROS camera_info YAML) ---------------------------------------------------------
CAMERA_INFO_FIELDS = (
    "image_width",
    "image_height",
    "camera_name",
    "camera_matrix",
    "distortion_model",
    "distortion_coefficients",
    "rectification_matrix",
    "projection_matrix",
)


def save_camera_info(path: Path, intr: Intrinsics) -> Path:
    P = np.hstack([intr.K, np.zeros((3, 1))])
    return _dump(
        path,
        {
            VERSION_KEY: VERSION,
            "image_width": int(intr.width),
            "image_height": int(intr.height),
            "camera_name": intr.camera_name,
            "camera_matrix": {"rows": 3, "cols": 3, "data": _floats(intr.K)},
            "distortion_model": intr.distortion_model,
            "distortion_coefficients": {"rows": 1, "cols": int(intr.dist.size), "data": _floats(intr.dist)},
            "rectification_matrix": {"rows": 3, "cols": 3, "data": _floats(np.eye(3))},
            "projection_matrix": {"rows": 3, "cols": 4, "data": _floats(P)},
            "rms_reprojection_error_px": float(intr.rms_px),
            "n_views": int(intr.n_views),
        },
    )


def load_camera_info(path: Path) -> Intrinsics:
    """Intrinsics from a camera_info YAML written by `robot-rl calibrate intrinsics`."""
    path = Path(path)
    raw = _read(path, "camera_info")
    _check_version(raw, path, "camera_info")
    _require(raw, CAMERA_INFO_FIELDS, path, "camera_info")
    K = _matrix(raw, "camera_matrix", 3, 3, path)
    dist = _matrix(raw, "distortion_coefficients", 1, None, path).ravel()
    width, height = raw["image_width"], raw["image_height"]
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise CalibrationError(f"{path}: image_width and image_height must be positive integers, got {width}, {height}")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise CalibrationError(f"{path}: camera_matrix focal lengths must be > 0, got fx={K[0, 0]}, fy={K[1, 1]}")
    return Intrinsics(
        width=width,
        height=height,
        K=K,
        dist=dist,
        distortion_model=str(raw["distortion_model"]),
        camera_name=str(raw["camera_name"]),
        rms_px=float(raw.get("rms_reprojection_error_px", math.nan)),
        n_views=int(raw.get("n_views", 0)),
    )


# --- transforms --------------------------------------------------------------------------------
def save_transform(path: Path, tf: Transform) -> Path:
    return _dump(
        path,
        {
            VERSION_KEY: VERSION,
            "kind": "transform",
            "parent": tf.parent,
            "child": tf.child,
            "translation_m": _floats(tf.translation_m),
            "quaternion_xyzw": _floats(tf.quaternion_xyzw),
            **({"info": tf.info} if tf.info else {}),
        },
    )


def load_transform(path: Path) -> Transform:
    """T_parent_child from a transform YAML written by `robot-rl calibrate hand-eye`."""
    path = Path(path)
    raw = _read(path, "transform")
    _check_version(raw, path, "transform", kind="transform")
    _require(raw, ("parent", "child", "translation_m", "quaternion_xyzw"), path, "transform")
    t = _numbers(raw["translation_m"], 3, "translation_m", path)
    q = _numbers(raw["quaternion_xyzw"], 4, "quaternion_xyzw", path)
    if abs(np.linalg.norm(q) - 1.0) > 1e-3:
        raise CalibrationError(
            f"{path}: quaternion_xyzw {q.tolist()} must have unit length, has {np.linalg.norm(q):.4f}"
        )
    return Transform(
        parent=str(raw["parent"]), child=str(raw["child"]), T=T_from_pose(t, q), info=raw.get("info") or {}
    )


# --- workspace ---------------------------------------------------------------------------------
def save_workspace(
    path: Path, box: WorkspaceBox, frame: str = "base", margin_m: float = 0.0, points_m: np.ndarray | None = None
) -> Path:
    data = {
        VERSION_KEY: VERSION,
        "kind": "workspace",
        "frame": frame,
        "low_m": _floats(box.low_m),
        "high_m": _floats(box.high_m),
        "margin_m": float(margin_m),
    }
    if points_m is not None:
        data["taught_points_m"] = [_floats(p) for p in np.asarray(points_m)]
    return _dump(path, data)


def load_workspace(path: Path) -> WorkspaceBox:
    """The WorkspaceBox of a workspace YAML written by `robot-rl calibrate workspace`."""
    path = Path(path)
    raw = _read(path, "workspace")
    _check_version(raw, path, "workspace", kind="workspace")
    _require(raw, ("frame", "low_m", "high_m"), path, "workspace")
    low, high = _numbers(raw["low_m"], 3, "low_m", path), _numbers(raw["high_m"], 3, "high_m", path)
    try:
        return WorkspaceBox(low_m=tuple(low.tolist()), high_m=tuple(high.tolist()))
    except ValueError as e:
        raise CalibrationError(f"{path}: {e}") from e


# --- tool poses (input) ------------------------------------------------------------------------
def load_poses(path: Path, need_images: bool = False) -> tuple[list[ToolPose], dict]:
    """Tool poses and the file's other fields (base_frame, tool_frame). Version field optional here:
    the file is written by people and scripts, not by calibration."""
    path = Path(path)
    raw = _read(path, "poses")
    if VERSION_KEY in raw:
        _check_version(raw, path, "poses")
    entries = raw.get("poses")
    if not isinstance(entries, list) or not entries:
        raise CalibrationError(
            f"poses file {path} needs a non-empty list `poses:` of entries "
            "{image: FILE, translation_m: [x, y, z], quaternion_xyzw: [x, y, z, w]}"
        )
    poses = []
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or "translation_m" not in e:
            raise CalibrationError(f"{path}: poses[{k}] needs translation_m [x, y, z] (metres, base frame), got {e!r}")
        if need_images and "image" not in e:
            raise CalibrationError(f"{path}: poses[{k}] needs an image file name for hand-eye calibration")
        t = _numbers(e["translation_m"], 3, f"poses[{k}].translation_m", path)
        q = _numbers(e.get("quaternion_xyzw", [0, 0, 0, 1]), 4, f"poses[{k}].quaternion_xyzw", path)
        poses.append(ToolPose(T_base_tool=T_from_pose(t, q), image=e.get("image")))
    meta = {k: v for k, v in raw.items() if k != "poses"}
    return poses, meta


def save_poses(path: Path, poses: list[ToolPose], base_frame: str = "base", tool_frame: str = "tool") -> Path:
    entries = []
    for p in poses:
        e = {"image": p.image} if p.image else {}
        e.update(
            translation_m=_floats(p.T_base_tool[:3, 3]),
            quaternion_xyzw=_floats(quat_xyzw_from_matrix(p.T_base_tool[:3, :3])),
        )
        entries.append(e)
    return _dump(path, {VERSION_KEY: VERSION, "base_frame": base_frame, "tool_frame": tool_frame, "poses": entries})
