"""Workspace-bounds teaching against the MuJoCo robot, from a script of prompts and from a poses file."""

from __future__ import annotations

import io as textio
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from robot_rl.cli import main  # noqa: E402
from robot_rl_calibration import io  # noqa: E402
from robot_rl_calibration.board import CalibrationError  # noqa: E402
from robot_rl_calibration.workspace import WorkspaceConfig, box_from_points, teach  # noqa: E402
from robot_rl_sim import scene  # noqa: E402
from robot_rl_sim.robot import MujocoRobot  # noqa: E402

CORNER_LOW, CORNER_HIGH = (0.35, -0.2, 0.06), (0.6, 0.18, 0.28)


def _make_robot() -> MujocoRobot:
    model = scene.build_model("calibration_test")
    robot = MujocoRobot(model, mujoco.MjData(model))
    robot.go_home()
    return robot


def test_teaching_drives_the_sim_robot_to_typed_corners_and_fits_the_box_with_a_margin():
    robot = _make_robot()
    said: list[str] = []
    lines = ["0.35 -0.2 0.06", "", "0.6, 0.18, 0.28", "", "done"]
    box, points = teach(robot, lines, said.append, WorkspaceConfig(margin_m=0.01))
    assert points.shape == (2, 3)
    np.testing.assert_allclose(points[0], CORNER_LOW, atol=0.004)
    np.testing.assert_allclose(points[1], CORNER_HIGH, atol=0.004)
    np.testing.assert_allclose(box.low_m, np.array(CORNER_LOW) + 0.01, atol=0.004)
    np.testing.assert_allclose(box.high_m, np.array(CORNER_HIGH) - 0.01, atol=0.004)
    assert any("recorded point 2" in s for s in said) and "workspace box" in said[-1]


def test_teaching_records_where_the_arm_is_and_reprompts_on_input_it_cannot_read():
    robot = _make_robot()
    home = robot.read().ee_pos_m.copy()
    said: list[str] = []
    box, points = teach(robot, ["", "left a bit", "0.45 0.1 0.15", ""], said.append)
    np.testing.assert_allclose(points[0], home, atol=1e-6)
    np.testing.assert_allclose(points[1], [0.45, 0.1, 0.15], atol=0.004)
    assert any("did not understand 'left a bit'" in s for s in said)
    assert box.contains(home) and box.contains(points[1])


def test_teaching_refuses_a_box_flat_along_an_axis_and_an_abort():
    robot = _make_robot()
    with pytest.raises(CalibrationError, match=r"thinner than min_extent_m=0.02 m along z"):
        teach(robot, ["0.4 -0.1 0.2", "", "0.55 0.1 0.2", "", "done"], lambda s: None)
    with pytest.raises(CalibrationError, match="aborted; nothing written"):
        teach(robot, ["", "quit"], lambda s: None)


def test_margin_larger_than_the_box_is_refused_naming_the_axes():
    with pytest.raises(CalibrationError, match=r"along x \(-0.100 m\), y \(-0.100 m\), z \(-0.100 m\)"):
        box_from_points(np.array([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1]]), WorkspaceConfig(margin_m=0.1))


def test_cli_workspace_on_the_sim_robot_reads_prompts_from_stdin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", textio.StringIO("0.35 -0.2 0.06\n\n0.6 0.18 0.28\n\ndone\n"))
    out = tmp_path / "ws.yaml"
    assert main(["calibrate", "workspace", "--sim", "--out", str(out), "--margin", "0.005"]) == 0
    box = io.load_workspace(out)
    np.testing.assert_allclose(box.low_m, np.array(CORNER_LOW) + 0.005, atol=0.004)
    np.testing.assert_allclose(box.high_m, np.array(CORNER_HIGH) - 0.005, atol=0.004)
    assert "wrote" in capsys.readouterr().out


def test_cli_workspace_from_a_poses_file_uses_every_position(tmp_path):
    poses = tmp_path / "corners.yaml"
    poses.write_text(
        yaml.safe_dump(
            {"poses": [{"translation_m": p} for p in ([0.3, -0.2, 0.05], [0.62, 0.0, 0.1], [0.5, 0.22, 0.3])]}
        )
    )
    out = tmp_path / "ws.yaml"
    assert main(["calibrate", "workspace", "--poses", str(poses), "--out", str(out)]) == 0
    box = io.load_workspace(out)
    assert box.low_m == pytest.approx((0.3, -0.2, 0.05)) and box.high_m == pytest.approx((0.62, 0.22, 0.3))
    assert len(yaml.safe_load(out.read_text())["taught_points_m"]) == 3
