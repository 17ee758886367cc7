"""Calibration YAML: ROS camera_info fields, named-frame transforms, workspace boxes, and loaders that refuse."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robot_rl.interfaces import WorkspaceBox
from robot_rl_calibration import io
from robot_rl_calibration.board import BoardConfig, CalibrationError
from robot_rl_calibration.intrinsics import Intrinsics
from robot_rl_calibration.transforms import (
    make_T,
    matrix_from_quat_xyzw,
    matrix_from_rotvec,
    quat_xyzw_from_matrix,
)


def _make_intrinsics() -> Intrinsics:
    K = np.array([[612.5, 0.0, 319.2], [0.0, 611.9, 241.7], [0.0, 0.0, 1.0]])
    return Intrinsics(
        width=640,
        height=480,
        K=K,
        dist=np.array([0.1, -0.2, 0.001, 0.002, 0.05]),
        camera_name="front",
        rms_px=0.21,
        n_views=17,
    )


def test_camera_info_yaml_has_the_ros_fields_and_round_trips(tmp_path):
    path = io.save_camera_info(tmp_path / "front.yaml", _make_intrinsics())
    raw = yaml.safe_load(path.read_text())
    for key in io.CAMERA_INFO_FIELDS:
        assert key in raw
    assert raw["robot_rl_calibration_version"] == 1
    assert raw["camera_matrix"] == {"rows": 3, "cols": 3, "data": [612.5, 0.0, 319.2, 0.0, 611.9, 241.7, 0.0, 0.0, 1.0]}
    assert raw["projection_matrix"]["data"][:4] == [612.5, 0.0, 319.2, 0.0]
    assert raw["distortion_model"] == "plumb_bob" and raw["distortion_coefficients"]["cols"] == 5
    back = io.load_camera_info(path)
    assert (back.width, back.height, back.camera_name) == (640, 480, "front")
    np.testing.assert_allclose(back.K, _make_intrinsics().K)
    np.testing.assert_allclose(back.dist, [0.1, -0.2, 0.001, 0.002, 0.05])
    assert back.rms_px == pytest.approx(0.21)


def test_camera_info_loader_refuses_a_wrong_version_naming_both_versions(tmp_path):
    path = io.save_camera_info(tmp_path / "front.yaml", _make_intrinsics())
    raw = yaml.safe_load(path.read_text())
    raw["robot_rl_calibration_version"] = 7
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match=r"robot_rl_calibration_version: 7; this version reads only 1"):
        io.load_camera_info(path)


def test_camera_info_loader_refuses_a_missing_field_and_a_file_without_version(tmp_path):
    path = io.save_camera_info(tmp_path / "front.yaml", _make_intrinsics())
    raw = yaml.safe_load(path.read_text())
    del raw["camera_matrix"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match=r"lacks the fields \['camera_matrix'\]"):
        io.load_camera_info(path)
    del raw["robot_rl_calibration_version"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match="has no robot_rl_calibration_version field"):
        io.load_camera_info(path)


def test_transform_yaml_has_named_frames_xyz_and_xyzw_and_round_trips(tmp_path):
    T = make_T(matrix_from_rotvec([0.3, -0.2, 1.1]), [0.05, -0.03, 0.08])
    path = io.save_transform(
        tmp_path / "T.yaml", io.Transform("tcp", "wrist_optical_frame", T, {"rms_translation_mm": 0.4})
    )
    raw = yaml.safe_load(path.read_text())
    assert (raw["parent"], raw["child"], raw["kind"]) == ("tcp", "wrist_optical_frame", "transform")
    assert raw["translation_m"] == pytest.approx([0.05, -0.03, 0.08])
    np.testing.assert_allclose(matrix_from_quat_xyzw(raw["quaternion_xyzw"]), T[:3, :3], atol=1e-12)
    back = io.load_transform(path)
    np.testing.assert_allclose(back.T, T, atol=1e-12)
    assert back.info == {"rms_translation_mm": 0.4}


def test_transform_loader_refuses_a_workspace_file_and_a_non_unit_quaternion(tmp_path):
    ws = io.save_workspace(tmp_path / "ws.yaml", WorkspaceBox((0.3, -0.2, 0.0), (0.6, 0.2, 0.3)))
    with pytest.raises(CalibrationError, match="is a 'workspace' file, not a 'transform' file"):
        io.load_transform(ws)
    path = io.save_transform(tmp_path / "T.yaml", io.Transform("base", "cam", np.eye(4)))
    raw = yaml.safe_load(path.read_text())
    raw["quaternion_xyzw"] = [0.0, 0.0, 0.0, 2.0]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match="must have unit length, has 2.0000"):
        io.load_transform(path)


def test_workspace_yaml_round_trips_to_a_workspace_box(tmp_path):
    box = WorkspaceBox((0.3, -0.25, 0.012), (0.7, 0.25, 0.32))
    path = io.save_workspace(tmp_path / "ws.yaml", box, frame="base", margin_m=0.01, points_m=np.zeros((2, 3)))
    assert io.load_workspace(path) == box
    raw = yaml.safe_load(path.read_text())
    raw["low_m"] = [0.3, -0.25]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(CalibrationError, match=r"low_m must be 3 finite numbers"):
        io.load_workspace(path)


def test_board_yaml_round_trips_and_refuses_unknown_fields_and_dictionaries(tmp_path):
    board = BoardConfig(
        squares_x=9, squares_y=6, square_length_m=0.03, marker_length_m=0.022, dictionary="DICT_6X6_250"
    )
    path = io.save_board(tmp_path / "board.yaml", board)
    assert io.load_board(path) == board
    path.write_text(yaml.safe_dump({**board.to_dict(), "sqaures_x": 9}))
    with pytest.raises(CalibrationError, match=r"unknown board fields \['sqaures_x'\]"):
        io.load_board(path)
    with pytest.raises(CalibrationError, match="ArUco dictionary 'DICT_9X9_1' is unknown; choose one of"):
        BoardConfig(dictionary="DICT_9X9_1")


def test_poses_file_reads_tool_poses_with_images_and_quaternions_xyzw(tmp_path):
    R = matrix_from_rotvec([0.0, 0.0, np.pi / 2])
    q = quat_xyzw_from_matrix(R)
    np.testing.assert_allclose(q, [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)
    path = tmp_path / "poses.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "base_frame": "base",
                "tool_frame": "tcp",
                "poses": [
                    {"image": "a.png", "translation_m": [0.4, 0.0, 0.3], "quaternion_xyzw": q.tolist()},
                    {"image": "b.png", "translation_m": [0.5, 0.1, 0.2], "quaternion_xyzw": [0, 0, 0, 1]},
                ],
            }
        )
    )
    poses, meta = io.load_poses(path, need_images=True)
    assert [p.image for p in poses] == ["a.png", "b.png"] and meta["tool_frame"] == "tcp"
    np.testing.assert_allclose(poses[0].T_base_tool[:3, :3], R, atol=1e-12)
    np.testing.assert_allclose(poses[1].T_base_tool[:3, 3], [0.5, 0.1, 0.2])
    path.write_text(yaml.safe_dump({"poses": [{"translation_m": [0.4, 0.0, 0.3]}]}))
    with pytest.raises(CalibrationError, match=r"poses\[0\] needs an image file name"):
        io.load_poses(path, need_images=True)
