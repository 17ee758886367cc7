"""The `robot-rl bench ros` process's own ROS 2 node: plays the learner's side of the protocol for timing.

It lives in its own rclpy context (so the bench process stays free of global ROS state) and speaks
`robot_rl.ros.protocol`: publishes policies on /learner/policy and /learner/policy_delta (as the learner does) and episodes on
/learner/episodes (as an actor does), and keeps every /learner/acks message with its wall receipt time.
It can also listen to a robot's clock, to tell the sim's pacing apart from the actor's in the jitter.
The orchestration and the statistics are in `robot_rl.bench.ros`, which imports this module lazily.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import wire
from robot_rl.nodes.spinning import spin_until
from robot_rl.ros import convert, protocol, topics


class BenchProbe:
    """Publishes policies and episodes, hears acks; `spin_until` drives its callbacks."""

    def __init__(self, name: str = "bench_ros") -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.policy_pub = self.node.create_publisher(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
        self.delta_pub = self.node.create_publisher(UInt8MultiArray, protocol.POLICY_DELTA, protocol.LATCHED_QOS)
        self.episode_pub = self.node.create_publisher(UInt8MultiArray, protocol.EPISODES, protocol.EPISODES_QOS)
        self.acks: list[tuple[float, dict[str, int]]] = []  # (time.monotonic() at receipt, {actor_id: count})
        self.node.create_subscription(String, protocol.ACKS, self._on_acks, protocol.LATCHED_QOS)
        self.clock: list[tuple[float, float]] = []  # (time.time() at receipt, sim seconds) while watching
        self.watching_clock = False

    def watch_clock(self, topic: str) -> None:
        """Keep (wall receipt, sim time) of every message on `topic` (a robot's remapped /clock) while watching_clock."""
        self.node.create_subscription(Clock, topic, self._on_clock, topics.CLOCK_QOS)

    def _on_clock(self, msg: Clock) -> None:
        if self.watching_clock:
            self.clock.append((time.time(), convert.seconds_from_stamp(msg.clock)))

    def _on_acks(self, msg: String) -> None:
        try:
            self.acks.append((time.monotonic(), protocol.acks_from_msg(msg)))
        except wire.WireError:
            pass  # not ours to judge; the actors log it

    def acked(self, actor_id: str) -> int:
        """Episodes the learner holds from `actor_id`, by its latest acks message (0 before any)."""
        return self.acks[-1][1].get(actor_id, 0) if self.acks else 0

    def policy_subscribers(self) -> int:
        return self.policy_pub.get_subscription_count()

    def episode_subscribers(self) -> int:
        return self.episode_pub.get_subscription_count()

    def publish_policy(self, msg: UInt8MultiArray, delta: bool = False) -> float:
        """Publish a prepared `protocol.policy_msg` (on /learner/policy_delta with `delta`); returns the wall time
        (time.time()) just before publishing."""
        t_wall = time.time()
        (self.delta_pub if delta else self.policy_pub).publish(msg)
        return t_wall

    def publish_episode(self, msg: UInt8MultiArray) -> None:
        self.episode_pub.publish(msg)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
        """Handle callbacks until `predicate()` holds or `timeout_s` passes; returns the predicate's last value."""
        return spin_until(self.executor, predicate, timeout_s, poll_s)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
