"""The robot cell as MJCF: a Panda-class arm with a parallel gripper, a table, cameras, lights.

Hand-written from the Franka Emika Panda kinematics (body frames as in MuJoCo Menagerie's
`franka_emika_panda/panda.xml`, Apache-2.0; only the numbers of the frames, joint limits and
link masses are taken from there, no meshes): links are capsules, the hand and fingers boxes.
Each task adds its objects with `build_model(objects_xml=...)`.

Frames: the world frame is the robot base frame; the table top is the plane z = 0 and the arm
stands on it at the origin. Rendering is kept lean for software (llvmpipe) EGL too: no shadows,
no MSAA, coarse tessellation of round geoms, no floor or skybox (the background is black).
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_rl.cell import WRIST_FOVY_DEG

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")
HOME_Q_RAD = (0.0, 0.0, 0.0, -1.5708, 0.0, 1.5708, -0.7854)  # the `home` keyframe of the arm
ARM_TORQUE_LIMIT_NM = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # Panda joint torque limits
FINGER_MAX_OPENING_M = 0.04  # travel of each finger; the full gap is twice this
TCP_SITE = "tcp"  # tool point between the finger pads, 0.1034 m from the flange like the real hand
CAMERAS = ("front", "wrist")
TIMESTEP_S = 0.002  # physics step: 500 Hz

_ARM_XML = """
<body name="link0" childclass="panda">
  <geom class="visual" type="cylinder" size="0.07 0.07" pos="0 0 0.07" rgba="0.9 0.9 0.9 1"/>
  <body name="link1" pos="0 0 0.333" gravcomp="1">
    <inertial mass="4.97" pos="0 -0.03 -0.07" diaginertia="0.032 0.03 0.011"/>
    <joint name="joint1" range="-2.8973 2.8973"/>
    <geom class="visual" type="capsule" size="0.06" fromto="0 0 -0.26 0 0 -0.05"/>
    <body name="link2" quat="1 -1 0 0" gravcomp="1">
      <inertial mass="0.65" pos="0 -0.07 0.03" diaginertia="0.03 0.01 0.03"/>
      <joint name="joint2" range="-1.7628 1.7628"/>
      <geom class="visual" type="capsule" size="0.06" fromto="0 0 0 0 -0.2 0"/>
      <body name="link3" pos="0 -0.316 0" quat="1 1 0 0" gravcomp="1">
        <inertial mass="3.23" pos="0.04 0.03 -0.07" diaginertia="0.04 0.04 0.01"/>
        <joint name="joint3" range="-2.8973 2.8973"/>
        <geom class="visual" type="capsule" size="0.055" fromto="0 0 -0.12 0.0825 0 0"/>
        <body name="link4" pos="0.0825 0 0" quat="1 1 0 0" gravcomp="1">
          <inertial mass="3.59" pos="-0.05 0.1 0.03" diaginertia="0.03 0.02 0.03"/>
          <joint name="joint4" range="-3.0718 -0.0698"/>
          <geom class="visual" type="capsule" size="0.055" fromto="0 0 0 -0.0825 0.1 0"/>
          <body name="link5" pos="-0.0825 0.384 0" quat="1 -1 0 0" gravcomp="1">
            <inertial mass="1.23" pos="0 0.04 -0.11" diaginertia="0.04 0.03 0.01"/>
            <joint name="joint5" range="-2.8973 2.8973"/>
            <geom class="visual" type="capsule" size="0.05" fromto="0 0 -0.26 0 0.05 -0.02"/>
            <body name="link6" quat="1 1 0 0" gravcomp="1">
              <inertial mass="1.67" pos="0.06 -0.01 0.01" diaginertia="0.002 0.004 0.005"/>
              <joint name="joint6" range="-0.0175 3.7525"/>
              <geom class="visual" type="capsule" size="0.045" fromto="0 0 -0.02 0.088 0 0"/>
              <body name="link7" pos="0.088 0 0" quat="1 1 0 0" gravcomp="1">
                <inertial mass="0.74" pos="0.01 0.01 0.08" diaginertia="0.012 0.01 0.005"/>
                <joint name="joint7" range="-2.8973 2.8973"/>
                <geom class="visual" type="cylinder" size="0.045 0.03" pos="0 0 0.07"/>
                <body name="hand" pos="0 0 0.107" quat="0.9238795 0 0 -0.3826834" gravcomp="1">
                  <inertial mass="0.73" pos="0 0 0.03" diaginertia="0.0025 0.0024 0.0017"/>
                  <geom class="hand" type="box" size="0.025 0.1 0.025" pos="0 0 0.03"/>
                  <site name="tcp" pos="0 0 0.1034" size="0.005" rgba="1 0 0 0" group="4"/>
                  <camera name="wrist" pos="0.06 0 0.06" xyaxes="0 1 0 0.857 0 0.514" fovy="{wrist_fovy}"/>
                  <body name="left_finger" pos="0 0 0.0584" gravcomp="1">
                    <inertial mass="0.015" pos="0 0.01 0.03" diaginertia="2e-5 2e-5 1e-5"/>
                    <joint name="finger_joint1" class="finger"/>
                    <geom class="pad" type="box" size="0.011 0.006 0.021" pos="0 0.006 0.034"/>
                  </body>
                  <body name="right_finger" pos="0 0 0.0584" quat="0 0 0 1" gravcomp="1">
                    <inertial mass="0.015" pos="0 0.01 0.03" diaginertia="2e-5 2e-5 1e-5"/>
                    <joint name="finger_joint2" class="finger"/>
                    <geom class="pad" type="box" size="0.011 0.006 0.021" pos="0 0.006 0.034"/>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
  </body>
</body>
"""

_MODEL_XML = """
<mujoco model="robot_rl_cell_{task}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{offwidth}" offheight="{offheight}"/>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="6" numquads="1"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <default>
    <default class="panda">
      <joint axis="0 0 1" armature="0.1" damping="1"/>
      <default class="visual">
        <geom contype="0" conaffinity="0" group="1" rgba="0.92 0.92 0.95 1"/>
      </default>
      <default class="hand">
        <geom rgba="0.25 0.25 0.28 1" friction="1 0.005 0.0001"/>
      </default>
      <default class="finger">
        <joint type="slide" axis="0 1 0" range="0 {finger_max}" armature="0.1" damping="2"/>
      </default>
      <default class="pad">
        <geom rgba="0.15 0.15 0.15 1" friction="1.5 0.02 0.0001" solref="0.004 1" solimp="0.95 0.99 0.001"
              priority="1" condim="6"/>
      </default>
    </default>
  </default>
  <worldbody>
    <light pos="0.6 -0.4 1.5" dir="-0.2 0.3 -1" castshadow="false" diffuse="0.6 0.6 0.6"/>
    <geom name="table" type="box" size="0.55 0.6 0.02" pos="0.45 0 -0.02" rgba="0.55 0.45 0.35 1"
          friction="1 0.005 0.0001"/>
    <camera name="front" pos="{front_pos}" xyaxes="{front_xyaxes}" fovy="45"/>
    {arm}
    {objects}
  </worldbody>
  <equality>
    <joint joint1="finger_joint1" joint2="finger_joint2" polycoef="0 1 0 0 0" solref="0.005 1"/>
  </equality>
  <actuator>
    {arm_motors}
    <position name="gripper" joint="finger_joint1" kp="4000" kv="60" ctrlrange="0 {finger_max}" forcerange="-40 40"/>
  </actuator>
  <keyframe>
    <key name="home" qpos="{home_qpos}" ctrl="{home_ctrl}"/>
  </keyframe>
</mujoco>
"""


FRONT_CAMERA_POS_M = (1.05, -0.5, 0.55)  # in front of the table, to the robot's right, looking down at
FRONT_CAMERA_LOOK_AT_M = (0.5, 0.0, 0.14)  # the middle of the workspace


def look_at_xyaxes(pos_m: tuple[float, ...], target_m: tuple[float, ...]) -> tuple[float, ...]:
    """MJCF `xyaxes` of a camera at `pos_m` looking at `target_m` with the image up toward +z."""
    forward = np.subtract(target_m, pos_m)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return (*right, *up)


def build_xml(
    task: str,
    objects_xml: str = "",
    objects_qpos: str = "",
    offscreen_width: int = 256,
    offscreen_height: int = 256,
    wrist_fovy_deg: float = WRIST_FOVY_DEG,
) -> str:
    """The cell's MJCF with `objects_xml` added to the world body and the wrist camera's lens (vertical field of
    view; a task's `robot_rl.cell.TaskSpec.wrist_fovy_deg`, as a real wrist camera's image is cropped per task).

    `objects_qpos` is the objects' part of the `home` keyframe (7 numbers per free joint).
    The offscreen buffer must hold the largest image rendered from the model (all cameras of a
    `CameraRig` side by side).
    """
    motors = "\n    ".join(
        f'<motor name="{j}" joint="{j}" ctrlrange="{-t} {t}"/>' for j, t in zip(ARM_JOINTS, ARM_TORQUE_LIMIT_NM)
    )
    home_qpos = " ".join(str(q) for q in HOME_Q_RAD) + f" {FINGER_MAX_OPENING_M} {FINGER_MAX_OPENING_M} {objects_qpos}"
    home_ctrl = " ".join(["0"] * len(ARM_JOINTS)) + f" {FINGER_MAX_OPENING_M}"
    return _MODEL_XML.format(
        task=task,
        front_pos=" ".join(f"{v:.4f}" for v in FRONT_CAMERA_POS_M),
        front_xyaxes=" ".join(f"{v:.4f}" for v in look_at_xyaxes(FRONT_CAMERA_POS_M, FRONT_CAMERA_LOOK_AT_M)),
        timestep=TIMESTEP_S,
        offwidth=offscreen_width,
        offheight=offscreen_height,
        finger_max=FINGER_MAX_OPENING_M,
        arm=_ARM_XML.format(wrist_fovy=f"{wrist_fovy_deg:g}"),
        objects=objects_xml,
        arm_motors=motors,
        home_qpos=home_qpos.strip(),
        home_ctrl=home_ctrl,
    )


def build_model(task: str, **xml_options) -> mujoco.MjModel:
    """Compile the cell with a task's objects; `xml_options` are `build_xml`'s (objects, offscreen size, wrist lens)."""
    return mujoco.MjModel.from_xml_string(build_xml(task, **xml_options))
