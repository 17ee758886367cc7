"""Read intrinsics from a ROS camera_info YAML file (what camera_calibration and `robot-rl calibrate` write).

Kept on its own so that it can be swapped for robot_rl_calibration's loader without touching the node:

    image_width: 640
    image_height: 480
    camera_name: front
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, t1, t2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [...]}    # optional, default identity
    projection_matrix: {rows: 3, cols: 4, data: [...]}       # optional, default [K | 0]

Other keys (e.g. a format version) are ignored.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from robot_rl_drivers.camera_geometry import IDENTITY3, CameraCalibration


def path_from_url(url: str) -> Path:
    """`file:///abs/path.yaml` or a plain path -> Path (other URL schemes are refused)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.netloc + parsed.path))
    if parsed.scheme:
        raise ValueError(f"camera_info_url {url!r}: only file:// URLs or plain paths are supported")
    return Path(url).expanduser()


def _matrix(doc: dict, key: str, rows: int, cols: int, where: str) -> tuple[float, ...]:
    entry = doc[key]
    data = entry.get("data") if isinstance(entry, dict) else None
    if not isinstance(data, list) or len(data) != rows * cols:
        raise ValueError(
            f"{where}: {key} must be a mapping with rows: {rows}, cols: {cols} and {rows * cols} "
            f"numbers in data, got {entry!r}"
        )
    try:
        return tuple(float(v) for v in data)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key}.data must hold numbers, got {data!r}") from None


def load_camera_info_yaml(url: str | Path) -> CameraCalibration:
    """Parse a camera_info YAML file; errors name the file and the missing or malformed field."""
    path = path_from_url(str(url))
    if not path.is_file():
        raise ValueError(
            f"camera info file {path} does not exist; give the path of a camera_info YAML "
            f"(camera_info_url:=file:///path/front.yaml) or leave it empty for nominal intrinsics"
        )
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"camera info file {path} is not valid YAML: {err}") from None
    required = ("image_width", "image_height", "camera_matrix")
    if not isinstance(doc, dict) or any(k not in doc for k in required):
        have = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"camera info file {path} needs {list(required)} (ROS camera_info YAML); it has {have}")
    where = f"camera info file {path}"
    D: tuple[float, ...] = (0.0,) * 5
    if "distortion_coefficients" in doc:
        entry = doc["distortion_coefficients"]
        n = len(entry.get("data") or []) if isinstance(entry, dict) else 5  # 5: the error names plumb_bob's count
        D = _matrix(doc, "distortion_coefficients", 1, n, where) if n else ()
    R = _matrix(doc, "rectification_matrix", 3, 3, where) if "rectification_matrix" in doc else IDENTITY3
    P = _matrix(doc, "projection_matrix", 3, 4, where) if "projection_matrix" in doc else ()
    try:
        return CameraCalibration(
            width=int(doc["image_width"]),
            height=int(doc["image_height"]),
            K=_matrix(doc, "camera_matrix", 3, 3, where),
            D=D,
            distortion_model=str(doc.get("distortion_model", "plumb_bob")),
            R=R,
            P=P,
            camera_name=str(doc.get("camera_name", "")),
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
