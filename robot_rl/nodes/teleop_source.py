"""`teleop/command` as an in-process `Teleop`: any teleop node (gamepad, SpaceMouse, keyboard, the scripted
operator) drives code that runs outside ROS, e.g. `robot-rl demos record --teleop ros`.

A private rclpy context spins one subscription in a background thread; `read()` hands out the newest
command through a `TeleopLink` (heartbeat timeout -> disconnected, events counted, never lost).
"""

from __future__ import annotations

import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Joy

from robot_rl.interfaces import TeleopCommand
from robot_rl.ros import topics
from robot_rl.ros.teleop_convert import teleop_fields_from_msg
from robot_rl.teleop.link import TeleopLink


class RosTeleop:
    def __init__(self, topic: str = topics.TELEOP_COMMAND, timeout_s: float = 0.5, node_name: str = "demo_recorder"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(node_name, context=self.context)
        self.link = TeleopLink(timeout_s)
        self._lock = threading.Lock()
        self.dropped = ""  # the last malformed message's error
        self.node.create_subscription(Joy, topic, self._on_msg, topics.COMMAND_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 (shutdown races end the thread)
                return

    def _on_msg(self, msg: Joy) -> None:
        try:
            fields = teleop_fields_from_msg(msg, topics.BASE_FRAME)
        except ValueError as err:
            self.dropped = str(err)
            return
        with self._lock:
            self.link.receive(**fields, t_s=time.monotonic())

    def read(self) -> TeleopCommand | None:
        with self._lock:
            return self.link.read(time.monotonic())

    def close(self) -> None:
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
