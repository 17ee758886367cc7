"""Hand-eye calibration from (tool pose in base, image of a board) pairs.

- eye-in-hand: the camera rides on the tool, the board is fixed; solves T_tool_cam.
- eye-to-hand: the camera is fixed, the board rides on the tool; solves T_base_cam.

Each image gives the board pose in the camera, T_cam_board (solvePnP with the camera's intrinsics).
With A_i = T_base_tool_i (eye-in-hand) or its inverse (eye-to-hand) and B_i = T_cam_board_i, the
unknown X makes C_i = A_i X B_i the same for every i: the fixed board in the base (eye-in-hand) or
in the tool (eye-to-hand). `cv2.calibrateHandEye` solves it where the installed OpenCV exposes it
(opencv-python 5.0.0 does not); otherwise Park & Martin's closed form on all pairs of views here.
The residuals are how far the C_i scatter around their mean: what a bad pose, a bad board detection
or a wrong solution shows up as.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from robot_rl_calibration.board import BoardConfig, CalibrationError, detect
from robot_rl_calibration.intrinsics import Intrinsics
from robot_rl_calibration.transforms import invert, make_T, rotation_angle_rad, rotvec_from_matrix

MODES = ("eye_in_hand", "eye_to_hand")
CV2_METHODS = {
    "tsai": "CALIB_HAND_EYE_TSAI",
    "park": "CALIB_HAND_EYE_PARK",
    "horaud": "CALIB_HAND_EYE_HORAUD",
    "andreff": "CALIB_HAND_EYE_ANDREFF",
    "daniilidis": "CALIB_HAND_EYE_DANIILIDIS",
}


@dataclass(frozen=True)
class HandEyeConfig:
    """How hand-eye is solved and when the result is refused."""

    mode: str = "eye_in_hand"  # "eye_in_hand" (camera on the tool) or "eye_to_hand" (camera fixed, board on the tool)
    method: str = "park"  # cv2.calibrateHandEye method: tsai, park, horaud, andreff, daniilidis
    min_poses: int = 5  # fewest pairs with the board found
    max_rms_translation_mm: float = 5.0  # refuse if the fixed board scatters more than this (RMS), mm
    max_rms_rotation_deg: float = 1.0  # refuse if the fixed board's orientation scatters more than this (RMS), deg
    max_view_reprojection_px: float = 3.0  # drop a view whose board pose fits its corners worse than this, px

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CalibrationError(f"hand-eye mode {self.mode!r} is unknown; choose one of {list(MODES)}")
        if self.method not in CV2_METHODS:
            raise CalibrationError(f"hand-eye method {self.method!r} is unknown; choose one of {list(CV2_METHODS)}")


@dataclass
class HandEyeResult:
    X: np.ndarray  # (4, 4) T_tool_cam (eye_in_hand) or T_base_cam (eye_to_hand)
    mode: str
    solver: str  # what solved it
    rms_translation_mm: float
    max_translation_mm: float
    rms_rotation_deg: float
    max_rotation_deg: float
    n_poses: int
    per_view_translation_mm: list[float] = field(default_factory=list)
    per_view_rotation_deg: list[float] = field(default_factory=list)
    view_names: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "mode": self.mode,
            "solver": self.solver,
            "n_poses": self.n_poses,
            "rms_translation_mm": round(self.rms_translation_mm, 4),
            "max_translation_mm": round(self.max_translation_mm, 4),
            "rms_rotation_deg": round(self.rms_rotation_deg, 5),
            "max_rotation_deg": round(self.max_rotation_deg, 5),
        }


def board_pose(board: BoardConfig, intr: Intrinsics, image: np.ndarray) -> tuple[np.ndarray, float] | None:
    """T_cam_board and the RMS reprojection error (px) of one image, or None if the board is not found."""
    found = detect(board, image)
    if found is None:
        return None
    obj, img = found
    ok, rvec, tvec = cv2.solvePnP(obj, img, intr.K, intr.dist, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    proj, _ = cv2.projectPoints(obj, rvec, tvec, intr.K, intr.dist)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    return make_T(cv2.Rodrigues(rvec)[0], tvec.ravel()), err


def solve_park_martin(A: Sequence[np.ndarray], B: Sequence[np.ndarray]) -> np.ndarray:
    """X with A_i X B_i constant, from all pairs of views (Park & Martin 1994, SVD form)."""
    alphas, betas, rows, rhs = [], [], [], []
    pairs = [(i, j) for i in range(len(A)) for j in range(i + 1, len(A))]
    motions = [(invert(A[j]) @ A[i], B[j] @ invert(B[i])) for i, j in pairs]  # M_A X = X M_B
    for MA, MB in motions:
        alphas.append(rotvec_from_matrix(MA[:3, :3]))
        betas.append(rotvec_from_matrix(MB[:3, :3]))
    H = sum(np.outer(b, a) for a, b in zip(alphas, betas))  # alpha ~ R_X beta
    U, _, Vt = np.linalg.svd(H)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    for MA, MB in motions:  # (R_A - I) t_X = R_X t_B - t_A
        rows.append(MA[:3, :3] - np.eye(3))
        rhs.append(R @ MB[:3, 3] - MA[:3, 3])
    t, *_ = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)
    return make_T(R, t)


def _solve_cv2(A, B, method: str) -> np.ndarray:
    R, t = cv2.calibrateHandEye(
        [a[:3, :3] for a in A],
        [a[:3, 3] for a in A],
        [b[:3, :3] for b in B],
        [b[:3, 3] for b in B],
        method=getattr(cv2, CV2_METHODS[method]),
    )
    return make_T(R, np.asarray(t).ravel())


def check_diversity(A: Sequence[np.ndarray]) -> None:
    """Refuse poses whose relative rotations do not span two axes (X is then not determined)."""
    axes = []
    for i in range(len(A)):
        for j in range(i + 1, len(A)):
            r = rotvec_from_matrix((invert(A[j]) @ A[i])[:3, :3])
            if np.linalg.norm(r) > math.radians(5.0):
                axes.append(r / np.linalg.norm(r))
    spread = np.linalg.eigvalsh(sum(np.outer(a, a) for a in axes) / len(axes)) if axes else np.zeros(3)
    if len(axes) < 2 or spread[-2] < 0.02:
        raise CalibrationError(
            "the tool poses rotate about one axis only (or by less than 5 deg), so hand-eye is not determined; "
            "record poses tilted by 15-30 deg about at least two different axes"
        )


def residuals(A, B, X) -> tuple[np.ndarray, np.ndarray]:
    """Per view: distance (mm) and angle (deg) of C_i = A_i X B_i from their mean."""
    C = [a @ X @ b for a, b in zip(A, B)]
    t_mean = np.mean([c[:3, 3] for c in C], axis=0)
    U, _, Vt = np.linalg.svd(sum(c[:3, :3] for c in C))
    R_mean = U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt
    dt = np.array([np.linalg.norm(c[:3, 3] - t_mean) * 1000.0 for c in C])
    dr = np.array([math.degrees(rotation_angle_rad(R_mean.T @ c[:3, :3])) for c in C])
    return dt, dr


def calibrate(
    board: BoardConfig,
    intr: Intrinsics,
    T_base_tool: Sequence[np.ndarray],
    images: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    cfg: HandEyeConfig = HandEyeConfig(),
) -> HandEyeResult:
    names = list(names) if names is not None else [f"view {i}" for i in range(len(images))]
    if len(T_base_tool) != len(images):
        raise CalibrationError(f"{len(T_base_tool)} tool poses but {len(images)} images; give one image per pose")
    A, B, used, dropped = [], [], [], []
    for name, T, image in zip(names, T_base_tool, images):
        if image.shape[:2] != (intr.height, intr.width):
            raise CalibrationError(
                f"image {name} is {image.shape[1]}x{image.shape[0]} but the intrinsics are for {intr.width}x{intr.height}"
            )
        pose = board_pose(board, intr, image)
        if pose is None or pose[1] > cfg.max_view_reprojection_px:
            dropped.append(name if pose is None else f"{name} ({pose[1]:.2f} px)")
            continue
        A.append(T if cfg.mode == "eye_in_hand" else invert(T))
        B.append(pose[0])
        used.append(name)
    if len(used) < cfg.min_poses:
        raise CalibrationError(
            f"the board was usable in {len(used)} of {len(images)} images (not found or badly fitted: "
            f"{', '.join(dropped[:8]) or 'none'}); need at least min_poses={cfg.min_poses}"
        )
    check_diversity(A)
    if hasattr(cv2, "calibrateHandEye"):
        X, solver = _solve_cv2(A, B, cfg.method), f"cv2.calibrateHandEye({cfg.method})"
    else:
        X, solver = solve_park_martin(A, B), "park_martin (numpy; this cv2 lacks calibrateHandEye)"
    dt, dr = residuals(A, B, X)
    result = HandEyeResult(
        X=X,
        mode=cfg.mode,
        solver=solver,
        n_poses=len(used),
        rms_translation_mm=float(np.sqrt(np.mean(dt**2))),
        max_translation_mm=float(dt.max()),
        rms_rotation_deg=float(np.sqrt(np.mean(dr**2))),
        max_rotation_deg=float(dr.max()),
        per_view_translation_mm=dt.tolist(),
        per_view_rotation_deg=dr.tolist(),
        view_names=used,
    )
    fixed = "board in the base frame" if cfg.mode == "eye_in_hand" else "board on the tool"
    worst = ", ".join(f"{used[k]} ({dt[k]:.1f} mm, {dr[k]:.2f} deg)" for k in np.argsort(-dt)[:3])
    if result.rms_translation_mm > cfg.max_rms_translation_mm:
        raise CalibrationError(
            f"hand-eye residual: the {fixed} scatters by {result.rms_translation_mm:.2f} mm RMS, above "
            f"max_rms_translation_mm={cfg.max_rms_translation_mm}; worst views {worst}. Check the mode "
            f"({cfg.mode}), that each image was taken at its pose (robot at rest), and the intrinsics"
        )
    if result.rms_rotation_deg > cfg.max_rms_rotation_deg:
        raise CalibrationError(
            f"hand-eye residual: the {fixed} orientation scatters by {result.rms_rotation_deg:.3f} deg RMS, "
            f"above max_rms_rotation_deg={cfg.max_rms_rotation_deg}; worst views {worst}. Check the mode "
            f"({cfg.mode}), the pose quaternions' order (x, y, z, w) and the intrinsics"
        )
    return result
