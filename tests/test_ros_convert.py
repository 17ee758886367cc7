"""Message conversions (robot_rl.ros.convert): real ROS message types, no DDS."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from std_msgs.msg import Float64

from robot_rl.interfaces import CameraSpec, EECommand, Frame, RobotState
from robot_rl.ros import convert

pytestmark = pytest.mark.ros  # needs the ROS 2 message packages (no DDS traffic)

ARM = tuple(f"joint{i}" for i in range(1, 8))
FINGERS = ("finger_joint1", "finger_joint2")


def _make_state() -> RobotState:
    rng = np.random.default_rng(0)
    quat = rng.normal(size=4)
    return RobotState(
        q_rad=rng.normal(size=7),
        dq_rad_s=rng.normal(size=7),
        ee_pos_m=np.array([0.5, -0.1, 0.2]),
        ee_quat_wxyz=quat / np.linalg.norm(quat),
        ee_linvel_m_s=np.array([0.01, 0.0, -0.02]),
        gripper_width_m=0.05,
        t_capture=12.345678901,
    )


def test_stamps_round_trip_to_the_nanosecond():
    stamp = convert.stamp_from_seconds(12.345678901)
    assert (stamp.sec, stamp.nanosec) == (12, 345678901)
    assert convert.seconds_from_stamp(stamp) == pytest.approx(12.345678901, abs=1e-9)
    with pytest.raises(convert.MessageError, match="finite seconds"):
        convert.stamp_from_seconds(float("nan"))


def test_robot_state_round_trips_through_four_messages_even_with_joints_in_another_order():
    state = _make_state()
    joints, pose, twist, gripper = convert.robot_state_msgs(state, ARM, FINGERS, "base")
    assert pose.header.frame_id == "base" and joints.header.stamp == pose.header.stamp == gripper.header.stamp
    assert list(gripper.position) == [0.025, 0.025]  # franka_gripper style: each finger half the gap
    order = [6, 0, 5, 1, 4, 2, 3]  # a driver may publish joints in any order
    joints.name = [joints.name[i] for i in order]
    joints.position = [joints.position[i] for i in order]
    joints.velocity = [joints.velocity[i] for i in order]
    back = convert.robot_state_from_msgs(joints, pose, twist, gripper, ARM, FINGERS)
    for field in ("q_rad", "dq_rad_s", "ee_pos_m", "ee_quat_wxyz", "ee_linvel_m_s"):
        np.testing.assert_allclose(getattr(back, field), getattr(state, field), atol=1e-12)
    assert back.gripper_width_m == pytest.approx(0.05) and back.t_capture == pytest.approx(state.t_capture, abs=1e-9)


def test_joint_state_missing_a_joint_or_with_nan_is_refused_with_the_names():
    joints, pose, twist, gripper = convert.robot_state_msgs(_make_state(), ARM, FINGERS, "base")
    short = convert.joint_state_msg(ARM[:6], np.zeros(6), np.zeros(6), 1.0)
    with pytest.raises(convert.MessageError, match=r"lacks joints \['joint7'\]"):
        convert.robot_state_from_msgs(short, pose, twist, gripper, ARM, FINGERS)
    joints.position[3] = float("nan")
    with pytest.raises(convert.MessageError, match="non-finite"):
        convert.robot_state_from_msgs(joints, pose, twist, gripper, ARM, FINGERS)


def test_images_round_trip_as_rgb8_and_padded_bgr8_is_reordered():
    rgb = np.random.default_rng(1).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    msg = convert.image_msg(Frame(rgb, 3.5), "front_optical_frame")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 5, 15, "rgb8")
    back = convert.frame_from_image(msg)
    np.testing.assert_array_equal(back.image, rgb)
    assert back.t_capture == 3.5
    padded = np.zeros((4, 16), dtype=np.uint8)  # a driver's row padding: step 16 > 3 * 5
    padded[:, :15] = rgb[:, :, ::-1].reshape(4, 15)
    bgr = Image(height=4, width=5, encoding="bgr8", step=16, data=padded.tobytes())
    np.testing.assert_array_equal(convert.frame_from_image(bgr).image, rgb)


def test_unusable_images_say_what_was_expected():
    with pytest.raises(convert.MessageError, match="needs 60 bytes"):
        convert.frame_from_image(Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(59)))
    with pytest.raises(convert.MessageError, match="not colour; point this camera input at a colour stream"):
        convert.frame_from_image(Image(height=1, width=1, encoding="mono16", step=2, data=bytes(2)))
    with pytest.raises(convert.MessageError, match=r"\(H, W, 3\) uint8"):
        convert.image_msg(Frame(np.zeros((4, 5), dtype=np.uint8), 0.0), "")


def test_camera_info_carries_k_and_projection_of_the_spec():
    spec = CameraSpec("front", 64, 48, 10.0, (50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0), "front_optical_frame")
    info = convert.camera_info_msg(spec, 2.0)
    assert (info.width, info.height, info.header.frame_id) == (64, 48, "front_optical_frame")
    assert list(info.k) == list(spec.K) and list(info.p) == [
        50.0,
        0.0,
        32.0,
        0.0,
        0.0,
        50.0,
        24.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    assert convert.camera_spec_from_info(info, "front", 10.0) == spec


def test_twist_times_dt_is_the_command_delta_and_back():
    cmd = EECommand(np.array([0.002, -0.001, 0.0]), np.array([0.0, 0.0, 0.01]), gripper=0.7)
    twist = convert.twist_from_command(cmd, dt_s=0.02, t_s=1.0, frame_id="base")
    assert twist.twist.linear.x == pytest.approx(0.1) and twist.twist.angular.z == pytest.approx(0.5)
    back = convert.command_from_twist(twist, dt_s=0.02, gripper=0.7, frame_id="base")
    np.testing.assert_allclose(back.delta_pos_m, cmd.delta_pos_m)
    np.testing.assert_allclose(back.delta_rotvec_rad, cmd.delta_rotvec_rad)
    assert back.gripper == 0.7


def test_commands_in_another_frame_or_non_finite_are_refused():
    twist = TwistStamped()
    twist.header.frame_id = "camera"
    with pytest.raises(convert.MessageError, match="must be in 'base'"):
        convert.command_from_twist(twist, 0.02, 0.0, "base")
    twist.header.frame_id = ""
    twist.twist.linear.y = float("inf")
    with pytest.raises(convert.MessageError, match="non-finite"):
        convert.command_from_twist(twist, 0.02, 0.0, "base")
    with pytest.raises(convert.MessageError, match=r"closing in \[0, 1\]"):
        convert.gripper_from_msg(Float64(data=float("nan")))
    assert convert.gripper_from_msg(convert.gripper_command_msg(1.5)) == 1.5  # clamping is the safety filter's job


def test_pose_targets_come_back_normalised_and_bad_ones_are_refused_with_the_reason():
    pos, quat = convert.target_from_pose(convert.pose_msg([0.5, 0.1, 0.2], [0.0, 0.0, 0.0, 1.02], 0.0, ""), "base")
    np.testing.assert_allclose(pos, [0.5, 0.1, 0.2])
    np.testing.assert_allclose(quat, [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(convert.MessageError, match="must be in 'base'"):
        convert.target_from_pose(convert.pose_msg([0.5, 0.1, 0.2], [1, 0, 0, 0], 0.0, "camera"), "base")
    zero = convert.pose_msg([0.5, 0.1, 0.2], [1, 0, 0, 0], 0.0, "")
    zero.pose.orientation.w = 0.0
    with pytest.raises(convert.MessageError, match="norm 0; send a unit quaternion"):
        convert.target_from_pose(zero, "base")
    zero.pose.position.x = float("nan")
    with pytest.raises(convert.MessageError, match="non-finite"):
        convert.target_from_pose(zero, "base")
