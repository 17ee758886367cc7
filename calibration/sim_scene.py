"""A MuJoCo rig that renders a calibration board from known camera poses (tests and demos; needs mujoco).

The board is a textured quad whose geom frame is the OpenCV board frame (see `board.py`); the camera
is a free-floating (mocap) body whose pose is given as the OpenCV optical frame (x right, y down,
z forward). MuJoCo cameras look down their -z with y up, so the rig turns one into the other.
The true pinhole intrinsics of the render are `true_K`: f = h / (2 tan(fovy / 2)), the principal
point in the image centre ((w - 1) / 2 in OpenCV's pixel-centre convention).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import mujoco
import numpy as np

from robot_rl_calibration.board import BoardConfig, board_image
from robot_rl_calibration.transforms import quat_xyzw_from_matrix

_FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV optical frame <-> MuJoCo camera frame

_XML = """
<mujoco model="calibration_rig">
  <compiler angle="radian" inertiafromgeom="false"/>
  <visual>
    <global offwidth="{width}" offheight="{height}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.3 0.3 0.3" diffuse="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="board" type="2d" file="{png}"/>
    <material name="board" texture="board" emission="0.6" specular="0" shininess="0" rgba="1 1 1 1"/>
    <mesh name="board" inertia="shell" vertex="{vertex}" face="0 2 1 0 3 2" texcoord="{texcoord}"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.5" rgba="0.35 0.3 0.25 1"/>
    <body name="board" mocap="true">
      <inertial pos="0 0 0" mass="0.1" diaginertia="1e-3 1e-3 1e-3"/>
      <geom name="board" type="mesh" mesh="board" material="board" contype="0" conaffinity="0"/>
    </body>
    <body name="camera" mocap="true">
      <inertial pos="0 0 0" mass="0.1" diaginertia="1e-3 1e-3 1e-3"/>
      <camera name="cam" fovy="{fovy_deg}"/>
    </body>
  </worldbody>
</mujoco>
"""


def true_K(width: int, height: int, fovy_deg: float) -> np.ndarray:
    f = 0.5 * height / math.tan(0.5 * math.radians(fovy_deg))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


class BoardRig:
    """Render `cfg`'s board at `T_world_board` seen by a camera at `T_world_cam` (optical frame)."""

    def __init__(
        self,
        cfg: BoardConfig,
        asset_dir: Path,
        width: int = 640,
        height: int = 480,
        fovy_deg: float = 50.0,
        px_per_square: int = 120,
    ):
        from robot_rl_sim.camera import CameraRig

        margin_px = px_per_square // 2
        png = Path(asset_dir) / "calibration_board.png"
        cv2.imwrite(str(png), board_image(cfg, px_per_square, margin_px))
        m = margin_px / px_per_square * cfg.square_length_m
        w, h = cfg.size_m
        corners = [(-m, -m), (w + m, -m), (w + m, h + m), (-m, h + m)]
        vertex = " ".join(f"{x:.6f} {y:.6f} 0" for x, y in corners)
        # texcoord v runs from the top row of the image, the board's y = -m edge
        texcoord = "0 0  1 0  1 1  0 1"
        xml = _XML.format(
            width=width, height=height, png=png.resolve(), vertex=vertex, texcoord=texcoord, fovy_deg=fovy_deg
        )
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.K = true_K(width, height, fovy_deg)
        self._board_mocap = self.model.body_mocapid[self.model.body("board").id]
        self._cam_mocap = self.model.body_mocapid[self.model.body("camera").id]
        self._rig = CameraRig(self.model, self.data, ["cam"], width, height)

    def render(self, T_world_cam: np.ndarray, T_world_board: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB image."""
        for mocap, R, t in (
            (self._cam_mocap, T_world_cam[:3, :3] @ _FLIP, T_world_cam[:3, 3]),
            (self._board_mocap, T_world_board[:3, :3], T_world_board[:3, 3]),
        ):
            x, y, z, w = quat_xyzw_from_matrix(R)
            self.data.mocap_pos[mocap] = t
            self.data.mocap_quat[mocap] = (w, x, y, z)
        mujoco.mj_forward(self.model, self.data)
        return self._rig.render()["cam"]

    def close(self) -> None:
        self._rig.close()


def make_sim_robot():
    """The MuJoCo cell's arm at home (for `robot-rl calibrate workspace --sim`)."""
    from robot_rl_sim import scene
    from robot_rl_sim.robot import MujocoRobot

    model = scene.build_model("calibration")
    robot = MujocoRobot(model, mujoco.MjData(model))
    robot.go_home()
    return robot
