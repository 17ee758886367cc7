"""The keyboard as a teleop node: a terminal's keys -> `teleop/command` (works over SSH, no display).

    robot-rl-keyboard-node --ros-args -r __ns:=/robot_1          # in a terminal (ssh -t, tmux, ...)
    robot-rl-keyboard-node --ros-args -p mapping:=/etc/robot/my_keys.yaml

Reads the terminal in cbreak mode (`robot_rl.teleop.keyboard.TerminalKeyboard`) every `1 / rate_hz`
s and publishes the command (layout: `robot_rl.ros.teleop_convert`) -- the stream is the heartbeat.
The key help goes to stderr at start. Keys (default mapping `keyboard`): w/s a/d r/f (or arrows,
page up/down) move x/y/z, j/l i/k u/o rotate, t takes over / gives back, space stops, c/v/g close /
open / toggle the gripper, y success, n failure, x re-record. Ctrl-C quits and restores the terminal;
if the terminal goes away the node publishes connected = 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rclpy.node import Node

from robot_rl.nodes.teleop import CommandPublisher, run_node
from robot_rl.ros import topics
from robot_rl.ros.params import declare_config
from robot_rl.teleop.keyboard import TerminalKeyboard, help_text
from robot_rl.teleop.mapping import KeyboardMapping, load_mapping


@dataclass(frozen=True)
class KeyboardNodeConfig:
    """ROS parameters of the keyboard node."""

    mapping: str = "keyboard"  # a default keyboard mapping name or a YAML file path
    rate_hz: float = 50.0  # terminal polls and teleop/command messages per second (node clock)
    base_frame: str = topics.BASE_FRAME  # frame_id stamped on teleop/command


class KeyboardNode(Node):
    def __init__(self, **node_kw):
        super().__init__("keyboard_teleop", **node_kw)
        self.cfg = cfg = declare_config(self, KeyboardNodeConfig())
        if cfg.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {cfg.rate_hz}")
        mapping = load_mapping(cfg.mapping)
        if not isinstance(mapping, KeyboardMapping):
            raise ValueError(
                f"mapping {cfg.mapping!r} is a {mapping.source} mapping; give a keyboard one "
                f"(or run robot-rl-teleop-node for it)"
            )
        self.keyboard = TerminalKeyboard(mapping)
        self.out = CommandPublisher(self, cfg.base_frame)
        self.create_timer(1.0 / cfg.rate_hz, self._tick)
        print(help_text(mapping) + "\nCtrl-C quits.", file=sys.stderr, flush=True)
        self.get_logger().info(f"keyboard teleop up: {topics.TELEOP_COMMAND} at {cfg.rate_hz} Hz")

    def _tick(self) -> None:
        cmd = self.keyboard.read()
        if cmd.events:
            self.get_logger().info(f"events: {', '.join(cmd.events)}")
        self.out.publish(cmd)

    def close(self) -> None:
        self.keyboard.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-keyboard-node`."""
    return run_node("robot-rl-keyboard-node", KeyboardNode, argv)


if __name__ == "__main__":
    sys.exit(main())
