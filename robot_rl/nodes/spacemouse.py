"""A SpaceMouse read directly over HID as a teleop node, for machines without the spacenav driver.

    robot-rl-spacemouse-node --ros-args -r __ns:=/robot_1 [-p mapping:=spacemouse_hid] [-p device:=SpaceMouse Compact]

Reads the device through `robot_rl.teleop.spacemouse.HidSpaceMouse` (pyspacemouse, imported only
here; a clear error names what to install when it is missing), maps it with the `spacemouse_hid`
mapping (or any `source: hid` file) and publishes `teleop/command` every `1 / rate_hz` s. When the
device stops answering (unplugged) the node keeps publishing with connected = 0 after the mapping's
timeout. With spacenavd running, prefer robot-rl-teleop-node with mapping:=spacemouse.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rclpy.node import Node

from robot_rl.nodes.teleop import CommandPublisher, run_node
from robot_rl.ros import topics
from robot_rl.ros.params import declare_config
from robot_rl.teleop.joy import JoyMapper
from robot_rl.teleop.mapping import JoyMapping, load_mapping
from robot_rl.teleop.spacemouse import HidSpaceMouse


@dataclass(frozen=True)
class SpaceMouseNodeConfig:
    """ROS parameters of the direct SpaceMouse node."""

    mapping: str = "spacemouse_hid"  # a `source: hid` mapping name or YAML file path
    device: str = ""  # pyspacemouse device name (e.g. "SpaceMouse Compact"); empty = the first one found
    rate_hz: float = 50.0  # device reads and teleop/command messages per second (node clock)
    base_frame: str = topics.BASE_FRAME  # frame_id stamped on teleop/command


class SpaceMouseNode(Node):
    def __init__(self, **node_kw):
        super().__init__("spacemouse_teleop", **node_kw)
        self.cfg = cfg = declare_config(self, SpaceMouseNodeConfig())
        mapping = load_mapping(cfg.mapping)
        if not isinstance(mapping, JoyMapping) or mapping.source != "hid":
            raise ValueError(
                f"mapping {cfg.mapping!r} has source {mapping.source!r}; this node needs a 'hid' one "
                f"such as spacemouse_hid"
            )
        self.mapper = JoyMapper(mapping)
        self.device: HidSpaceMouse | None = None
        self.device = HidSpaceMouse(cfg.device)
        self.out = CommandPublisher(self, cfg.base_frame)
        self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self.get_logger().info(f"SpaceMouse teleop up: {topics.TELEOP_COMMAND} at {cfg.rate_hz} Hz")

    def _tick(self) -> None:
        now_s = self.get_clock().now().nanoseconds * 1e-9
        reading = self.device.read()
        if reading is not None:
            try:
                self.mapper.on_joy(*reading, now_s)
            except ValueError as err:
                self.get_logger().warning(f"dropped a reading: {err}", throttle_duration_sec=2.0)
        self.out.publish(self.mapper.read(now_s))

    def close(self) -> None:
        if self.device is not None:
            self.device.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-spacemouse-node`."""
    return run_node("robot-rl-spacemouse-node", SpaceMouseNode, argv)


if __name__ == "__main__":
    sys.exit(main())
