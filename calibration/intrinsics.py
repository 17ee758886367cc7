"""Camera intrinsics from views of a board: detect corners, `cv2.calibrateCamera`, check the RMS error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from robot_rl_calibration.board import BoardConfig, CalibrationError, detect

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class IntrinsicsConfig:
    """How intrinsics are fitted and when the fit is refused."""

    max_rms_px: float = 1.0  # refuse a fit whose RMS reprojection error is above this, pixels
    min_views: int = 6  # fewest views with the board found
    distortion_model: str = "plumb_bob"  # "plumb_bob" (k1 k2 p1 p2 k3) or "rational_polynomial" (8 coefficients)
    fix_aspect_ratio: bool = False  # fit one focal length for x and y (square pixels)


@dataclass
class Intrinsics:
    """A calibrated pinhole camera with distortion, in OpenCV conventions."""

    width: int
    height: int
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (5,) plumb_bob or (8,) rational_polynomial
    distortion_model: str = "plumb_bob"
    camera_name: str = "camera"
    rms_px: float = float("nan")  # RMS reprojection error of the fit
    n_views: int = 0  # views used in the fit
    per_view_rms_px: list[float] = field(default_factory=list)
    view_names: list[str] = field(default_factory=list)  # the used views, in fit order


def list_images(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationError(f"image directory {directory} does not exist")
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    return paths


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise CalibrationError(f"cannot read image {path}; give a PNG/JPEG file")
    return image


def calibrate(
    board: BoardConfig,
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    cfg: IntrinsicsConfig = IntrinsicsConfig(),
    camera_name: str = "camera",
) -> Intrinsics:
    """Fit intrinsics to `images` (grey or colour uint8, all the same size); raise CalibrationError when
    too few views show the board or the RMS reprojection error is above `cfg.max_rms_px`."""
    names = list(names) if names is not None else [f"view {i}" for i in range(len(images))]
    if cfg.distortion_model not in ("plumb_bob", "rational_polynomial"):
        raise CalibrationError(
            f"distortion_model {cfg.distortion_model!r} is unknown; choose 'plumb_bob' or 'rational_polynomial'"
        )
    sizes = {im.shape[:2] for im in images}
    if len(sizes) != 1:
        raise CalibrationError(f"images have different sizes {sorted(sizes)}; calibrate one camera at one resolution")
    height, width = sizes.pop()
    obj_pts, img_pts, used = [], [], []
    for name, image in zip(names, images):
        found = detect(board, image)
        if found is not None:
            obj_pts.append(found[0])
            img_pts.append(found[1])
            used.append(name)
    if len(used) < cfg.min_views:
        raise CalibrationError(
            f"the board ({board.pattern} {board.squares_x}x{board.squares_y}) was found in {len(used)} of "
            f"{len(images)} images; need at least {cfg.min_views}. Check the board file matches the printed board, "
            "and take more views that show the whole board at different tilts"
        )
    flags = cv2.CALIB_RATIONAL_MODEL if cfg.distortion_model == "rational_polynomial" else 0
    K0 = None
    if cfg.fix_aspect_ratio:
        flags |= cv2.CALIB_FIX_ASPECT_RATIO | cv2.CALIB_USE_INTRINSIC_GUESS
        f0 = float(max(width, height))
        K0 = np.array([[f0, 0, (width - 1) / 2], [0, f0, (height - 1) / 2], [0, 0, 1]])
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj_pts, img_pts, (width, height), K0, None, flags=flags)
    per_view = []
    for o, i, rv, tv in zip(obj_pts, img_pts, rvecs, tvecs):
        proj, _ = cv2.projectPoints(o, rv, tv, K, dist)
        per_view.append(float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - i) ** 2, axis=1)))))
    n_coef = 8 if cfg.distortion_model == "rational_polynomial" else 5
    result = Intrinsics(
        width=int(width),
        height=int(height),
        K=np.asarray(K, dtype=np.float64),
        dist=np.asarray(dist, dtype=np.float64).ravel()[:n_coef],
        distortion_model=cfg.distortion_model,
        camera_name=camera_name,
        rms_px=float(rms),
        n_views=len(used),
        per_view_rms_px=per_view,
        view_names=used,
    )
    if not rms <= cfg.max_rms_px:
        worst = sorted(zip(per_view, used), reverse=True)[:3]
        raise CalibrationError(
            f"RMS reprojection error {rms:.3f} px is above the threshold max_rms_px={cfg.max_rms_px} px; "
            f"worst views: {', '.join(f'{n} ({e:.2f} px)' for e, n in worst)}. Remove blurred or mis-detected "
            "views, check the board's square and marker lengths, or raise the threshold knowingly"
        )
    return result


def calibrate_dir(
    board: BoardConfig, directory: Path, cfg: IntrinsicsConfig = IntrinsicsConfig(), camera_name: str = "camera"
) -> Intrinsics:
    paths = list_images(directory)
    return calibrate(board, [read_image(p) for p in paths], [p.name for p in paths], cfg, camera_name)
