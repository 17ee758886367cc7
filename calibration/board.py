"""Calibration targets: a ChArUco board (default) or a plain checkerboard, and finding them in images.

The board frame is OpenCV's: origin at the board's top-left outer corner as printed, x along the
squares_x direction (right), y along squares_y (down the printed image), z into the board.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

PATTERNS = ("charuco", "checkerboard")
DICTIONARIES = tuple(sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_") and n.upper() == n))


class CalibrationError(ValueError):
    """Input or result that calibration refuses, with what was wrong and what would be right."""


@dataclass(frozen=True)
class BoardConfig:
    """The printed target. Measure the printed squares: printers scale."""

    pattern: str = "charuco"  # "charuco" (ArUco markers in the white squares) or "checkerboard"
    squares_x: int = 7  # squares along the board's x (its width as printed)
    squares_y: int = 5  # squares along the board's y (its height as printed)
    square_length_m: float = 0.04  # side of one chessboard square, metres
    marker_length_m: float = 0.03  # side of one ArUco marker, metres (charuco only; < square_length_m)
    dictionary: str = "DICT_5X5_100"  # ArUco dictionary the markers come from (charuco only)
    legacy_pattern: bool = False  # boards made by OpenCV < 4.6 with an even squares_y (charuco only)
    min_corners: int = 8  # fewest corners a view needs to be used

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise CalibrationError(f"board pattern {self.pattern!r} is unknown; choose one of {list(PATTERNS)}")
        if self.squares_x < 3 or self.squares_y < 3:
            raise CalibrationError(
                f"board of {self.squares_x}x{self.squares_y} squares is too small; need at least 3x3"
            )
        if not self.square_length_m > 0:
            raise CalibrationError(f"square_length_m must be > 0 metres, got {self.square_length_m}")
        if self.pattern == "charuco":
            if not 0 < self.marker_length_m < self.square_length_m:
                raise CalibrationError(
                    f"marker_length_m {self.marker_length_m} must be > 0 and below square_length_m {self.square_length_m}"
                )
            if self.dictionary not in DICTIONARIES:
                raise CalibrationError(
                    f"ArUco dictionary {self.dictionary!r} is unknown; choose one of {list(DICTIONARIES)}"
                )

    @classmethod
    def from_dict(cls, raw: dict, source: str = "board") -> BoardConfig:
        if not isinstance(raw, dict):
            raise CalibrationError(f"{source}: expected a mapping of board fields, got {type(raw).__name__}")
        raw = {k: v for k, v in raw.items() if k != "robot_rl_calibration_version"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CalibrationError(f"{source}: unknown board fields {unknown}; valid fields are {sorted(known)}")
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def inner_corners(self) -> tuple[int, int]:
        """Interior chessboard corners (x, y)."""
        return self.squares_x - 1, self.squares_y - 1

    @property
    def size_m(self) -> tuple[float, float]:
        return self.squares_x * self.square_length_m, self.squares_y * self.square_length_m


def make_charuco(cfg: BoardConfig) -> cv2.aruco.CharucoBoard:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, cfg.dictionary))
    board = cv2.aruco.CharucoBoard((cfg.squares_x, cfg.squares_y), cfg.square_length_m, cfg.marker_length_m, dictionary)
    board.setLegacyPattern(cfg.legacy_pattern)
    return board


def checkerboard_object_points(cfg: BoardConfig) -> np.ndarray:
    """(N, 3) inner corners in the board frame, row by row (OpenCV's findChessboardCorners order)."""
    nx, ny = cfg.inner_corners
    xs, ys = np.meshgrid(np.arange(1, nx + 1), np.arange(1, ny + 1))
    pts = np.stack([xs.ravel(), ys.ravel(), np.zeros(nx * ny)], axis=1) * cfg.square_length_m
    return pts.astype(np.float32)


def board_image(cfg: BoardConfig, px_per_square: int = 100, margin_px: int = 0) -> np.ndarray:
    """(H, W) uint8 image of the board to print or texture: px_per_square per square plus a white margin."""
    w, h = cfg.squares_x * px_per_square, cfg.squares_y * px_per_square
    if cfg.pattern == "charuco":
        img = make_charuco(cfg).generateImage((w, h), marginSize=0, borderBits=1)
    else:
        ix, iy = np.meshgrid(np.arange(w) // px_per_square, np.arange(h) // px_per_square)
        img = np.where((ix + iy) % 2 == 0, 0, 255).astype(np.uint8)
    return cv2.copyMakeBorder(img, margin_px, margin_px, margin_px, margin_px, cv2.BORDER_CONSTANT, value=255)


def detect(cfg: BoardConfig, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Board corners in one image: (N, 3) float32 board-frame points and (N, 2) float32 pixels, or None
    if fewer than `cfg.min_corners` were found. `image` is grey or RGB/BGR uint8."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if cfg.pattern == "charuco":
        board = make_charuco(cfg)
        corners, ids, _, _ = cv2.aruco.CharucoDetector(board).detectBoard(grey)
        if corners is None or ids is None or len(ids) < cfg.min_corners:
            return None
        obj, img = board.matchImagePoints(corners, ids)
        obj, img = obj.reshape(-1, 3).astype(np.float32), img.reshape(-1, 2).astype(np.float32)
        if board.checkCharucoCornersCollinear(ids):
            return None
        return obj, img
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, cfg.inner_corners, flags=flags)
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return checkerboard_object_points(cfg), corners.reshape(-1, 2).astype(np.float32)
