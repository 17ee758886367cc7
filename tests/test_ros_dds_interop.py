"""An independent DDS implementation (Eclipse Cyclone DDS, no rclpy) plays a hardware driver next to our rclpy side.

The peer speaks ROS 2's wire mapping by hand: topic `/ns/joint_states` is DDS topic `rt/ns/joint_states`,
type `sensor_msgs/msg/JointState` is `sensor_msgs::msg::dds_::JointState_`, XCDR1 little-endian, the ROS
default QoS (reliable, keep last 10, volatile) for state and commands and best effort for images. It
publishes joint states and a camera image that our rclpy side reads through `robot_rl.ros.convert`,
and it reads the twist and gripper commands our side sends. rclpy here runs on Fast DDS (the wheels'
only RMW), so this is Fast DDS <-> Cyclone DDS on the wire.
(No `from __future__ import annotations`: cyclonedds reads the IDL field types at runtime.)
"""

import os
import time
from dataclasses import dataclass

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64

from robot_rl.interfaces import EECommand
from robot_rl.ros import convert, topics

cyclonedds = pytest.importorskip("cyclonedds", reason="the test extra installs cyclonedds")
from cyclonedds.core import Policy, Qos  # noqa: E402
from cyclonedds.domain import Domain, DomainParticipant  # noqa: E402
from cyclonedds.idl import IdlStruct  # noqa: E402
from cyclonedds.idl.types import float64, int32, sequence, uint8, uint32  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402

pytestmark = pytest.mark.ros

NS = f"dds_peer_{os.getpid()}"
ARM = tuple(f"joint{i}" for i in range(1, 8))
# Cyclone on loopback only (inside `./run.sh test` that is the only interface anyway).
CYCLONE_LOOPBACK = (
    '<CycloneDDS><Domain><General><Interfaces><NetworkInterface name="lo" multicast="true"/>'
    "</Interfaces></General></Domain></CycloneDDS>"
)


# --- IDL equivalents of the ROS 2 messages (field order and types as in the .msg files) ----------------
@dataclass
class Time_(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header_(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time_
    frame_id: str


@dataclass
class JointState_(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header_
    name: sequence[str]
    position: sequence[float64]
    velocity: sequence[float64]
    effort: sequence[float64]


@dataclass
class Image_(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header_
    height: uint32
    width: uint32
    encoding: str
    is_bigendian: uint8
    step: uint32
    data: sequence[uint8]


@dataclass
class Vector3_(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Twist_(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3_
    angular: Vector3_


@dataclass
class TwistStamped_(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header_
    twist: Twist_


@dataclass
class Float64_(IdlStruct, typename="std_msgs::msg::dds_::Float64_"):
    data: float64


XCDR1 = Policy.DataRepresentation(use_cdrv0_representation=True)
ROS_DEFAULT_QOS = Qos(
    Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
    Policy.History.KeepLast(10),
    Policy.Durability.Volatile,
    XCDR1,
)
ROS_SENSOR_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5), Policy.Durability.Volatile, XCDR1)


def _spin_until(executor, predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not predicate():
        executor.spin_once(timeout_sec=0.05)
    return predicate()


@pytest.fixture
def ros_side():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("dds_interop_probe", namespace=NS, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)


@pytest.fixture
def peer():
    domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    domain = Domain(domain_id, config=CYCLONE_LOOPBACK)
    participant = DomainParticipant(domain_id)
    yield participant
    del participant, domain


def test_cyclone_driver_publishes_joint_states_and_an_image_that_rclpy_reads(ros_side, peer):
    node, executor = ros_side
    heard = {"joints": [], "image": []}
    node.create_subscription(JointState, topics.JOINT_STATES, heard["joints"].append, topics.STATE_QOS)
    node.create_subscription(Image, topics.image_topic("front"), heard["image"].append, topics.SENSOR_QOS)
    joints_w = DataWriter(peer, Topic(peer, f"rt/{NS}/joint_states", JointState_), qos=ROS_DEFAULT_QOS)
    image_w = DataWriter(peer, Topic(peer, f"rt/{NS}/front/image_raw", Image_), qos=ROS_SENSOR_QOS)
    rgb = np.random.default_rng(0).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    q = np.linspace(-1.0, 1.0, 7)
    stamp = Time_(sec=42, nanosec=500_000_000)

    def publish_and_check() -> bool:
        joints_w.write(JointState_(Header_(stamp, ""), list(ARM), q.tolist(), [0.1] * 7, []))
        image_w.write(Image_(Header_(stamp, "front_optical_frame"), 24, 32, "rgb8", 0, 96, rgb.tobytes()))
        executor.spin_once(timeout_sec=0.1)
        return bool(heard["joints"] and heard["image"])

    assert _spin_until(executor, publish_and_check, timeout_s=20.0), (
        f"rclpy (Fast DDS) did not receive from Cyclone DDS: joints {len(heard['joints'])}, images {len(heard['image'])}"
    )
    js = heard["joints"][-1]
    assert tuple(js.name) == ARM and np.allclose(js.position, q) and list(js.velocity) == [0.1] * 7
    assert convert.seconds_from_stamp(js.header.stamp) == 42.5
    frame = convert.frame_from_image(heard["image"][-1])
    np.testing.assert_array_equal(frame.image, rgb)
    assert frame.t_capture == 42.5 and heard["image"][-1].header.frame_id == "front_optical_frame"


def test_cyclone_driver_reads_the_commands_rclpy_sends(ros_side, peer):
    node, executor = ros_side
    twist_r = DataReader(peer, Topic(peer, f"rt/{NS}/ee_command", TwistStamped_), qos=ROS_DEFAULT_QOS)
    gripper_r = DataReader(peer, Topic(peer, f"rt/{NS}/gripper_command", Float64_), qos=ROS_DEFAULT_QOS)
    twist_pub = node.create_publisher(TwistStamped, topics.EE_COMMAND, topics.COMMAND_QOS)
    gripper_pub = node.create_publisher(Float64, topics.GRIPPER_COMMAND, topics.COMMAND_QOS)
    cmd = EECommand(np.array([0.002, 0.0, -0.001]), np.array([0.0, 0.0, 0.004]))
    got: dict[str, list] = {"twist": [], "gripper": []}

    def send_and_read() -> bool:
        twist_pub.publish(convert.twist_from_command(cmd, dt_s=0.02, t_s=7.25, frame_id=topics.BASE_FRAME))
        gripper_pub.publish(convert.gripper_command_msg(0.75))
        executor.spin_once(timeout_sec=0.1)
        got["twist"] += twist_r.take(N=10)
        got["gripper"] += gripper_r.take(N=10)
        return bool(got["twist"] and got["gripper"])

    assert _spin_until(executor, send_and_read, timeout_s=20.0), (
        f"Cyclone DDS did not receive from rclpy: twists {len(got['twist'])}, gripper {len(got['gripper'])}"
    )
    twist = got["twist"][-1]
    assert (twist.header.stamp.sec, twist.header.stamp.nanosec, twist.header.frame_id) == (7, 250_000_000, "base")
    assert (twist.twist.linear.x, twist.twist.linear.z, twist.twist.angular.z) == pytest.approx((0.1, -0.05, 0.2))
    assert got["gripper"][-1].data == 0.75
