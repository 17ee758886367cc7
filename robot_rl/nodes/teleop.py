"""The teleop node: a gamepad's or SpaceMouse's standard topics -> the normalised `teleop/command`.

    robot-rl-teleop-node --ros-args -r __ns:=/robot_1 -p mapping:=xbox          # joy (game_controller_node)
    robot-rl-teleop-node --ros-args -r __ns:=/robot_1 -p mapping:=spacemouse    # spacenav/twist + spacenav/joy
    robot-rl-teleop-node --ros-args -p mapping:=/etc/robot/my_pad.yaml

The mapping file's `source` picks the inputs: `joy` subscribes to `joy` (sensor_msgs/Joy), `spacenav`
to `spacenav/twist` (geometry_msgs/Twist) and `spacenav/joy` (sensor_msgs/Joy); remap them as needed.
Every `1 / rate_hz` s (node clock) it publishes the mapped command on `teleop/command` (layout:
`robot_rl.ros.teleop_convert`), also while the device is silent -- then with connected = 0 -- so the
stream itself is a heartbeat: a receiver that hears nothing knows this node is gone.
Mapping logic: `robot_rl.teleop.joy.JoyMapper`; files: `robot_rl/teleop/mappings/`.

`CommandPublisher` and `run_node` are shared by the keyboard, SpaceMouse and operator nodes.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import Twist
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Joy

from robot_rl.interfaces import TeleopCommand
from robot_rl.ros import teleop_convert, topics
from robot_rl.ros.guard import Refusals
from robot_rl.ros.params import declare_config
from robot_rl.teleop.joy import JoyMapper
from robot_rl.teleop.link import EventCounts
from robot_rl.teleop.mapping import JoyMapping, load_mapping


class CommandPublisher:
    """Publishes TeleopCommands on `teleop/command`, keeping the running event counts."""

    def __init__(self, node: Node, frame_id: str = topics.BASE_FRAME):
        self.node, self.frame_id = node, frame_id
        self.counts = EventCounts()
        self.pub = node.create_publisher(Joy, topics.TELEOP_COMMAND, topics.COMMAND_QOS)
        self.published = 0

    def publish(self, cmd: TeleopCommand) -> None:
        self.counts.add(cmd.events)
        t_s = self.node.get_clock().now().nanoseconds * 1e-9
        self.pub.publish(teleop_convert.teleop_command_msg(cmd, self.counts.snapshot(), t_s, self.frame_id))
        self.published += 1


@dataclass(frozen=True)
class TeleopNodeConfig:
    """ROS parameters of the teleop node."""

    mapping: str = "xbox"  # a default mapping (xbox, ps4, ps5, spacemouse) or a YAML file path
    rate_hz: float = 50.0  # teleop/command rate: the heartbeat (node clock)
    base_frame: str = topics.BASE_FRAME  # frame_id stamped on teleop/command


class TeleopNode(Node):
    """One device's topics in, `teleop/command` out."""

    def __init__(self, **node_kw):
        super().__init__("teleop", **node_kw)
        self.cfg = cfg = declare_config(self, TeleopNodeConfig())
        if cfg.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {cfg.rate_hz}")
        mapping = load_mapping(cfg.mapping)
        if not isinstance(mapping, JoyMapping) or mapping.source == "hid":
            node = "robot-rl-keyboard-node" if mapping.source == "keyboard" else "robot-rl-spacemouse-node"
            raise ValueError(
                f"mapping {cfg.mapping!r} is for source {mapping.source!r}, which this node cannot read; "
                f"use {node}, or a joy / spacenav mapping here"
            )
        self.mapper = JoyMapper(mapping)
        self.out = CommandPublisher(self, cfg.base_frame)
        self.refusals = Refusals(self)  # whatever a callback raises on refuses the message, never ends the node
        guarded = self.refusals.guarded
        if mapping.source == "joy":
            self.create_subscription(Joy, topics.JOY, guarded(topics.JOY, self._on_joy), topics.DEVICE_QOS)
            inputs = [topics.JOY]
        else:
            self.create_subscription(
                Twist, topics.SPACENAV_TWIST, guarded(topics.SPACENAV_TWIST, self._on_spacenav_twist), topics.DEVICE_QOS
            )
            self.create_subscription(
                Joy, topics.SPACENAV_JOY, guarded(topics.SPACENAV_JOY, self._on_spacenav_joy), topics.DEVICE_QOS
            )
            inputs = [topics.SPACENAV_TWIST, topics.SPACENAV_JOY]
        self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self._was_connected = False
        self.get_logger().info(
            f"teleop up: mapping {mapping.name} ({mapping.source}) from {inputs} -> "
            f"{topics.TELEOP_COMMAND} at {cfg.rate_hz} Hz, disconnect after {mapping.timeout_s} s"
        )

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _guard(self, update: Callable[[], None]) -> None:
        update()  # a malformed device message raises: the guard refuses and counts it per topic

    def _on_joy(self, msg: Joy) -> None:
        self._guard(lambda: self.mapper.on_joy(msg.axes, msg.buttons, self._now_s()))

    def _on_spacenav_twist(self, msg: Twist) -> None:
        lin, ang = msg.linear, msg.angular
        self._guard(lambda: self.mapper.on_axes([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z], self._now_s()))

    def _on_spacenav_joy(self, msg: Joy) -> None:
        self._guard(lambda: self.mapper.on_buttons(msg.buttons, self._now_s()))

    def _tick(self) -> None:
        cmd = self.mapper.read(self._now_s())
        if cmd.connected and not self._was_connected:
            self.get_logger().info("device connected")
        elif self._was_connected and not cmd.connected:
            self.get_logger().warning(
                f"device silent for {self.mapper.mapping.timeout_s} s: disconnected; "
                f"refused messages {self.refusals.as_dict()}"
            )
        self._was_connected = cmd.connected
        self.out.publish(cmd)


def run_node(prog: str, make_node: Callable[[], Node], argv: list[str] | None = None) -> int:
    """The standard main: init, spin until SIGINT/SIGTERM, clean shutdown; a bad parameter exits 2 with its message."""
    rclpy.init(args=sys.argv if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, RuntimeError) as err:
        if node is not None and not node.context.ok():  # shut down mid-callback: a clean exit
            return 0
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-teleop-node`."""
    return run_node("robot-rl-teleop-node", TeleopNode, argv)


if __name__ == "__main__":
    sys.exit(main())
