"""The actor node's side of delivering episodes to the learner over DDS (robot_rl.nodes.actor uses it).

A stored episode is published on /learner/episodes with the newest policy version that acted in it; the
learner's latched acks (`robot_rl.ros.protocol.ACKS`, heartbeat 1 s) say how many of this actor's episodes it
holds. Every housekeeping round (wall clock) decides learner liveness from the acks and resends what is stored
but unacknowledged. Flow control: at most `window_episodes` episodes past the learner's ack are in flight; an
ack that moves the window sends the next at once. The bookkeeping without ROS is robot_rl.acting.delivery
(Outbox, VersionLedger).

Threads: `deliver` is called by the control tick (`_end_episode`, on the executor thread, SCHED_FIFO where
permitted), `on_acks` and `housekeeping` by the same executor; all three only decide what to send. Reading an
episode from the store, encoding it (images compressed per frame, `robot_rl.wire`: ~15 ms of CPU for a 100-step
2-camera episode) and publishing it (~1 MB) happen on one sender thread of ordinary priority, started here
(before the node ticks, so it does not inherit the tick's real-time policy), so the tick never waits on them.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
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
        window_episodes: int = 4,
    ):
        self.node, self.store, self.task_meta = node, store, task_meta
        self.actor_id = node.get_fully_qualified_name()
        self.ledger = VersionLedger(store.path)  # the policy version that acted in each stored episode
        self.outbox = Outbox(self.actor_id, learner_timeout_s, resend_interval_s, window_episodes=window_episodes)
        self._outbox_lock = threading.Lock()  # the outbox is asked by the executor's callbacks, whichever thread
        self._fresh: tuple[int, dict[str, np.ndarray]] | None = None  # the episode just stored, for its first send
        self.on_learner_lost = on_learner_lost  # for the log line when the learner goes
        self.learner_alive = False
        self._warned_ack_ahead = False
        self.pub = node.create_publisher(UInt8MultiArray, protocol.EPISODES, protocol.EPISODES_QOS)
        self.sender = EpisodeSender(self.publish, node.get_logger())

    def deliver(self, index: int, policy_version: int, episode: dict[str, np.ndarray] | None = None) -> bool:
        """A newly stored episode: note the policy version that acted in it, send it if the window allows (on the
        sender thread); returns its success flag. `episode`: its arrays as stored (the recorder's), sent from memory
        instead of read back: the read is Python-heavy zarr work (50-140 ms on a loaded core) that held the GIL
        while the next episode's first ticks waited for it."""
        if episode is not None:
            with self._outbox_lock:
                self._fresh = (index, episode)  # one at most: the sender takes it, or reads the store
        self.ledger.add(index, policy_version)
        self.send_due(time.monotonic())
        if episode is not None:
            return bool(episode[keys.SUCCESS].any())
        rows = self.store.episode_slice(index)
        return bool(self.store.get_rows(rows.start, rows.stop, [keys.SUCCESS])[keys.SUCCESS].any())

    def publish(self, index: int) -> int:
        """Encode and send stored episode `index` on /learner/episodes (the sender thread), from memory when it is
        the one just stored, else read from the store (a resend); returns bytes sent."""
        with self._outbox_lock:
            fresh = self._fresh if self._fresh is not None and self._fresh[0] == index else None
            if fresh is not None:
                self._fresh = None
        episode = fresh[1] if fresh is not None else self.store.get_episode(index)
        success = bool(episode[keys.SUCCESS].any())
        meta = protocol.EpisodeMeta(self.actor_id, index, self.ledger.version(index), success, self.task_meta)
        msg = protocol.episode_msg(episode, meta)
        self.pub.publish(msg)
        return len(msg.data)

    def send_due(self, now: float) -> None:
        """Hand the sender what the window allows now: episodes never sent, then resends that are due."""
        n_stored = self.store.n_episodes
        with self._outbox_lock:
            fresh = self.outbox.fresh(n_stored)
            for index in fresh:
                self.outbox.sent(index, now)
            resends = self.outbox.due(n_stored, now)
            for index in resends:
                self.outbox.sent(index, now)
        for index in resends:
            self.node.get_logger().info(f"resending episode {index} (the learner holds {self.outbox.acked})")
        self.sender.offer(fresh + resends)

    def close(self) -> None:
        """Stop the sender thread (what it has not sent yet is resent by the next run: the store keeps it)."""
        self.sender.stop()

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
        self.send_due(now)

    def on_acks(self, msg: String) -> None:
        """The learner's acks; raises on anything but {str: int in [0, 2^63)} (the node's guard refuses it). An ack
        that moves the window sends the next episodes at once."""
        acks = protocol.acks_from_msg(msg)
        now = time.monotonic()
        with self._outbox_lock:
            self.outbox.on_acks(acks, now)
        self.send_due(now)
        if self.outbox.acked > self.store.n_episodes and not self._warned_ack_ahead:
            self._warned_ack_ahead = True
            self.node.get_logger().error(
                f"the learner holds {self.outbox.acked} episodes from {self.actor_id} but this actor's store has "
                f"{self.store.n_episodes}: it will ignore new ones as duplicates; use this actor's original store "
                "or another node name"
            )


class EpisodeSender:
    """One thread of ordinary priority that publishes the episode indices it is offered, in order, each once
    while queued (an index offered again before it went out is not queued twice)."""

    def __init__(self, publish, log) -> None:
        self._publish, self._log = publish, log
        self._cv = threading.Condition()
        self._queue: deque[int] = deque()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="episode-sender", daemon=True)
        self._thread.start()

    def offer(self, indices: list[int]) -> None:
        with self._cv:
            self._queue.extend(i for i in indices if i not in self._queue)
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._queue)

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._queue or self._stopped)
                if self._stopped:
                    return
                index = self._queue.popleft()
            t0 = time.perf_counter()
            try:
                n_bytes = self._publish(index)
            except Exception as e:  # noqa: BLE001 - a store or DDS error must not end the thread; the resend retries
                self._log.error(f"sending episode {index} failed: {type(e).__name__}: {e}")
                continue
            self._log.info(f"sent episode {index}: {n_bytes / 1e6:.2f} MB in {(time.perf_counter() - t0) * 1e3:.0f} ms")
