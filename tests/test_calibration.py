"""Intrinsics and hand-eye calibration on board images rendered by MuJoCo from known camera poses."""

from __future__ import annotations

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from robot_rl.cli import main  # noqa: E402
from robot_rl_calibration import hand_eye, io  # noqa: E402
from robot_rl_calibration.board import BoardConfig, CalibrationError  # noqa: E402
from robot_rl_calibration.intrinsics import Intrinsics, IntrinsicsConfig, calibrate  # noqa: E402
from robot_rl_calibration.sim_scene import BoardRig  # noqa: E402
from robot_rl_calibration.transforms import invert, make_T, matrix_from_rotvec, rotation_angle_rad  # noqa: E402

W, H, FOVY_DEG = 640, 480, 50.0
BOARD = BoardConfig(pattern="charuco", squares_x=7, squares_y=5, square_length_m=0.04, marker_length_m=0.03)
T_BASE_BOARD = make_T(np.diag([1.0, -1.0, -1.0]), [0.36, 0.1, 0.0])  # printed side up, on the table
X_TOOL_CAM = make_T(matrix_from_rotvec([0.1, -0.2, 1.2]), [0.05, -0.03, 0.08])  # eye-in-hand truth
T_BASE_CAM = make_T(matrix_from_rotvec([2.2, 0.4, -0.3]), [1.0, -0.4, 0.6])  # eye-to-hand truth (fixed camera)
X_TOOL_BOARD = make_T(matrix_from_rotvec([0.3, 0.0, 0.5]), [0.02, -0.1, 0.12])  # board on the tool (eye-to-hand)


def _look_at(pos, target, up, roll_rad) -> np.ndarray:
    """Optical frame (z forward, y down) at `pos` looking at `target`."""
    z = np.subtract(target, pos) / np.linalg.norm(np.subtract(target, pos))
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    return make_T(np.stack([x, np.cross(z, x), z], axis=1) @ matrix_from_rotvec([0, 0, roll_rad]), pos)


def _make_views_around_board(seed: int, n: int, board: BoardConfig = BOARD) -> list[np.ndarray]:
    """T_board_cam for n cameras 0.35-0.6 m in front of the printed side, tilted 5-40 deg, rolled +-30 deg."""
    rng = np.random.default_rng(seed)
    w, h = board.size_m
    centre = np.array([w / 2, h / 2, 0.0])
    views = []
    for _ in range(n):
        az, tilt = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(5, 40))
        direction = np.array([math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), -math.cos(tilt)])
        target = centre + np.append(rng.uniform(-0.04, 0.04, 2), 0.0)
        views.append(
            _look_at(centre + rng.uniform(0.35, 0.6) * direction, target, [0, -1.0, 0], rng.uniform(-0.5, 0.5))
        )
    return views


def _angle_deg(T_a, T_b) -> float:
    return math.degrees(rotation_angle_rad(T_a[:3, :3].T @ T_b[:3, :3]))


def _dist_mm(T_a, T_b) -> float:
    return float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3])) * 1000.0


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = BoardRig(BOARD, tmp_path_factory.mktemp("board_texture"), W, H, FOVY_DEG)
    yield r
    r.close()


@pytest.fixture(scope="module")
def eye_in_hand(rig):
    """(tool poses, images) with the camera on the tool and the board fixed on the table."""
    cams = [T_BASE_BOARD @ T for T in _make_views_around_board(seed=1, n=18)]
    return [T @ invert(X_TOOL_CAM) for T in cams], [rig.render(T, T_BASE_BOARD) for T in cams]


@pytest.fixture(scope="module")
def eye_to_hand(rig):
    """(tool poses, images) with the camera fixed and the board on the tool."""
    boards = [T_BASE_CAM @ invert(T) for T in _make_views_around_board(seed=2, n=18)]
    return [T @ invert(X_TOOL_BOARD) for T in boards], [rig.render(T_BASE_CAM, T) for T in boards]


@pytest.fixture(scope="module")
def fitted(eye_in_hand) -> Intrinsics:
    return calibrate(BOARD, eye_in_hand[1], camera_name="wrist")


# --- intrinsics -------------------------------------------------------------------------------
def test_intrinsics_from_rendered_charuco_views_recover_mujocos_focal_length_within_one_percent(rig, fitted):
    f_true = H / (2 * math.tan(math.radians(FOVY_DEG) / 2))
    assert fitted.n_views == 18
    assert fitted.rms_px < 0.3
    assert abs(fitted.K[0, 0] / f_true - 1) < 0.01 and abs(fitted.K[1, 1] / f_true - 1) < 0.01
    assert abs(fitted.K[0, 2] - (W - 1) / 2) < 3 and abs(fitted.K[1, 2] - (H - 1) / 2) < 3


def test_intrinsics_from_rendered_checkerboard_views_recover_the_focal_length_within_one_percent(tmp_path):
    board = BoardConfig(pattern="checkerboard", squares_x=8, squares_y=6, square_length_m=0.035)
    rig = BoardRig(board, tmp_path, W, H, FOVY_DEG)
    try:
        images = [rig.render(T, np.eye(4)) for T in _make_views_around_board(seed=3, n=15, board=board)]
    finally:
        rig.close()
    fit = calibrate(board, images)
    f_true = H / (2 * math.tan(math.radians(FOVY_DEG) / 2))
    assert fit.n_views >= 12
    assert abs(fit.K[0, 0] / f_true - 1) < 0.01 and abs(fit.K[1, 1] / f_true - 1) < 0.01


def test_intrinsics_refuse_a_fit_above_the_rms_threshold_naming_the_error_and_the_threshold(eye_in_hand):
    with pytest.raises(
        CalibrationError, match=r"RMS reprojection error 0\.\d+ px is above the threshold max_rms_px=0\.01"
    ):
        calibrate(BOARD, eye_in_hand[1], cfg=IntrinsicsConfig(max_rms_px=0.01))


def test_intrinsics_refuse_when_the_board_is_found_in_too_few_images(eye_in_hand):
    blank = [np.full((H, W), 128, np.uint8)] * 10
    with pytest.raises(CalibrationError, match="found in 3 of 13 images; need at least 6"):
        calibrate(BOARD, list(eye_in_hand[1][:3]) + blank)


# --- hand-eye ---------------------------------------------------------------------------------
def test_eye_in_hand_recovers_the_tool_camera_transform_within_2mm_and_half_a_degree(eye_in_hand, fitted):
    tools, images = eye_in_hand
    result = hand_eye.calibrate(BOARD, fitted, tools, images, cfg=hand_eye.HandEyeConfig(mode="eye_in_hand"))
    assert result.n_poses == 18
    assert _dist_mm(result.X, X_TOOL_CAM) < 2.0
    assert _angle_deg(result.X, X_TOOL_CAM) < 0.5
    assert result.rms_translation_mm < 2.0 and result.rms_rotation_deg < 0.3


def test_eye_to_hand_recovers_the_base_camera_transform_within_2mm_and_half_a_degree(eye_to_hand, fitted):
    tools, images = eye_to_hand
    result = hand_eye.calibrate(BOARD, fitted, tools, images, cfg=hand_eye.HandEyeConfig(mode="eye_to_hand"))
    assert _dist_mm(result.X, T_BASE_CAM) < 2.0
    assert _angle_deg(result.X, T_BASE_CAM) < 0.5


def test_hand_eye_refuses_poses_paired_with_the_wrong_images_naming_the_residual_and_threshold(eye_in_hand, fitted):
    tools, images = eye_in_hand
    shuffled = tools[1:] + tools[:1]
    with pytest.raises(CalibrationError, match=r"scatters by [\d.]+ mm RMS, above max_rms_translation_mm=5\.0"):
        hand_eye.calibrate(BOARD, fitted, shuffled, images)


def test_hand_eye_refuses_the_wrong_mode(eye_to_hand, fitted):
    with pytest.raises(CalibrationError, match=r"above max_rms_.*Check the mode \(eye_in_hand\)"):
        hand_eye.calibrate(BOARD, fitted, *eye_to_hand, cfg=hand_eye.HandEyeConfig(mode="eye_in_hand"))


def test_hand_eye_refuses_poses_that_rotate_about_one_axis_only():
    A = [make_T(matrix_from_rotvec([0, 0, 0.3 * k]), [0.1 * k, 0, 0]) for k in range(6)]
    with pytest.raises(CalibrationError, match="rotate about one axis only"):
        hand_eye.check_diversity(A)


def test_park_martin_solves_exact_motions_to_numerical_precision_and_matches_cv2_where_present():
    rng = np.random.default_rng(0)
    T_base_board = make_T(matrix_from_rotvec([0.2, 0.1, -0.3]), [0.5, 0.1, 0.0])
    A = [make_T(matrix_from_rotvec(rng.normal(0, 0.4, 3)), rng.uniform(-0.3, 0.3, 3)) for _ in range(8)]
    B = [invert(a @ X_TOOL_CAM) @ T_base_board for a in A]
    X = hand_eye.solve_park_martin(A, B)
    assert _dist_mm(X, X_TOOL_CAM) < 1e-6 and _angle_deg(X, X_TOOL_CAM) < 1e-6
    if hasattr(cv2, "calibrateHandEye"):  # opencv-python 5.0.0 lacks it
        X_cv = hand_eye._solve_cv2(A, B, "park")
        assert _dist_mm(X_cv, X_TOOL_CAM) < 1e-3 and _angle_deg(X_cv, X_TOOL_CAM) < 1e-4


# --- command line end to end ------------------------------------------------------------------
def test_cli_board_intrinsics_then_hand_eye_write_yaml_the_loaders_read(eye_in_hand, tmp_path, capsys):
    tools, images = eye_in_hand
    (tmp_path / "images").mkdir()
    poses = []
    for k, (T, image) in enumerate(zip(tools, images)):
        cv2.imwrite(str(tmp_path / "images" / f"{k:03d}.png"), image[:, :, ::-1])
        poses.append(io.ToolPose(T_base_tool=T, image=f"{k:03d}.png"))
    io.save_poses(tmp_path / "poses.yaml", poses, base_frame="base", tool_frame="tcp")
    board_yaml, cam, tf_yaml = tmp_path / "board.yaml", tmp_path / "cam.yaml", tmp_path / "wrist_T.yaml"
    assert (
        main(
            [
                "calibrate",
                "board",
                "--out",
                str(board_yaml),
                "--squares",
                "7",
                "5",
                "--square-length",
                "0.04",
                "--marker-length",
                "0.03",
            ]
        )
        == 0
    )
    assert cv2.imread(str(tmp_path / "board.png")) is not None
    assert (
        main(
            [
                "calibrate",
                "intrinsics",
                "--images",
                str(tmp_path / "images"),
                "--board",
                str(board_yaml),
                "--out",
                str(cam),
                "--camera-name",
                "wrist",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "calibrate",
                "hand-eye",
                "--poses",
                str(tmp_path / "poses.yaml"),
                "--images",
                str(tmp_path / "images"),
                "--intrinsics",
                str(cam),
                "--board",
                str(board_yaml),
                "--mode",
                "eye_in_hand",
                "--out",
                str(tf_yaml),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "RMS reprojection error" in out and "residuals" in out
    intr = io.load_camera_info(cam)
    assert abs(intr.K[1, 1] / (H / (2 * math.tan(math.radians(FOVY_DEG) / 2))) - 1) < 0.01
    tf = io.load_transform(tf_yaml)
    assert (tf.parent, tf.child) == ("tcp", "wrist_optical_frame")
    assert _dist_mm(tf.T, X_TOOL_CAM) < 2.0 and _angle_deg(tf.T, X_TOOL_CAM) < 0.5


def test_cli_intrinsics_refusal_exits_1_with_the_threshold_and_writes_nothing(eye_in_hand, tmp_path, capsys):
    (tmp_path / "images").mkdir()
    for k, image in enumerate(eye_in_hand[1][:8]):
        cv2.imwrite(str(tmp_path / "images" / f"{k}.png"), image)
    io.save_board(tmp_path / "board.yaml", BOARD)
    code = main(
        [
            "calibrate",
            "intrinsics",
            "--images",
            str(tmp_path / "images"),
            "--board",
            str(tmp_path / "board.yaml"),
            "--out",
            str(tmp_path / "cam.yaml"),
            "--max-rms",
            "0.001",
        ]
    )
    assert code == 1
    assert "max_rms_px=0.001" in capsys.readouterr().err
    assert not (tmp_path / "cam.yaml").exists()
