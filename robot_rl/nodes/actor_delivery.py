"""The actor node's side of delivering episodes to the learner over DDS (robot_rl.nodes.actor uses it).

A stored episode is published on /learner/episodes with the newest policy version that acted in it; the
learner's latched acks (`robot_rl.ros.protocol.ACKS`, heartbeat 1 s) say how many of this actor's episodes it
holds. Every housekeeping round (wall clock) decides learner liveness from the acks and resends what is stored
but unacknowledged. The bookkeeping without ROS is robot_rl.acting.delivery (Outbox, VersionLedger).
"""

from __future__ import annotations

import time

from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import keys
from robot_rl.acting.delivery import Outbox, VersionLedger
from robot_rl.data.store import EpisodeStore
from robot_rl.ros import protocol


class EpisodeDelivery:
    """Publishes this actor's stored episodes, resends the unacknowledged ones, and tracks the learner's presence."""

    def __init__(
        self,
        node: Node,
        store: EpisodeStore,
        task_meta: dict,
        learner_timeout_s: float,
        resend_interval_s: float,
        on_learner_lost: str,
    ):
        self.node, self.store, self.task_meta = node, store, task_meta
        self.actor_id = node.get_fully_qualified_name()
        self.ledger = VersionLedger(store.path)  # the policy version that acted in each stored episode
        self.outbox = Outbox(self.actor_id, learner_timeout_s, resend_interval_s)
        self.on_learner_lost = on_learner_lost  # for the log line when the learner goes
        self.learner_alive = False
        self._warned_ack_ahead = False
        self.pub = node.create_publisher(UInt8MultiArray, protocol.EPISODES, protocol.EPISODES_QOS)

    def deliver(self, index: int, policy_version: int) -> bool:
        """A newly stored episode: note the policy version that acted in it and send it; returns its success."""
        self.ledger.add(index, policy_version)
        return self.publish(index)

    def publish(self, index: int) -> bool:
        """Send stored episode `index` on /learner/episodes; returns its success flag."""
        episode = self.store.get_episode(index)
        success = bool(episode[keys.SUCCESS].any())
        meta = protocol.EpisodeMeta(self.actor_id, index, self.ledger.version(index), success, self.task_meta)
        self.pub.publish(protocol.episode_msg(episode, meta))
        self.outbox.sent(index, time.monotonic())
        return success

    def housekeeping(self, now: float) -> None:
        """Wall clock `now` (monotonic s): learner liveness from the acks heartbeat, then resends that are due."""
        log = self.node.get_logger()
        alive = self.outbox.learner_alive(now)
        if alive != self.learner_alive:
            self.learner_alive = alive
            if alive:
                log.info(
                    f"learner present: it holds {self.outbox.acked} of this actor's "
                    f"{self.store.n_episodes} stored episodes"
                )
            else:
                log.warning(
                    f"learner lost: no acks for {self.outbox.silent_for(now):.1f} s; "
                    f"on_learner_lost={self.on_learner_lost}"
                )
        for index in self.outbox.due(self.store.n_episodes, now):
            log.info(f"resending episode {index} (the learner holds {self.outbox.acked})")
            self.publish(index)

    def on_acks(self, msg: String) -> None:
        """The learner's acks; raises on anything but {str: int in [0, 2^63)} (the node's guard refuses it)."""
        acks = protocol.acks_from_msg(msg)
        self.outbox.on_acks(acks, time.monotonic())
        if self.outbox.acked > self.store.n_episodes and not self._warned_ack_ahead:
            self._warned_ack_ahead = True
            self.node.get_logger().error(
                f"the learner holds {self.outbox.acked} episodes from {self.actor_id} but this actor's store has "
                f"{self.store.n_episodes}: it will ignore new ones as duplicates; use this actor's original store "
                "or another node name"
            )
