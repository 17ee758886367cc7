"""The learner as a ROS 2 node: `robot-rl-learner-node --ros-args -p out:=runs/learner [-p demos:=demos/pick]`.

A thin shell around `robot_rl.learner.service.LearnerService` (itself ordering, acks and refusals around the
learning core `robot_rl.learner.core.Learner`, the one `robot-rl train` runs) speaking the learner side of
`robot_rl.ros.protocol`:

    /learner/episodes  (sub, EPISODES_QOS)  each payload -> service.ingest (durable) -> acks published
    /learner/acks      (pub, LATCHED_QOS)   {actor_id: episodes stored}, after every ingest and every ack_period_s
    /learner/policy    (pub, LATCHED_QOS)   Policy.to_bytes + version (update step): at start (and whenever the
                                            policy's base -- config, frozen trunk -- changes)
    /learner/policy_delta (pub, LATCHED_QOS) its trainable tensors in fp16 + version, naming that base: every
                                            publish_every_updates updates (robot_rl.agents.policy_delta)
    /learner/status    (pub, LATCHED_QOS)   JSON `LearnerService.status()`: episodes, updates, acks, refusals per
                                            reason, the layout's source; with every acks message

The acks are also the actors' heartbeat: a thread (`acks-heartbeat`) republishes the last acks message whenever the
main loop has not for ack_period_s, so a learner busy ingesting a pixel episode (seconds on a small CPU) is not taken
for lost -- each such "learner lost ... present" made every actor resend its whole window (19 times in one camera
fleet run).

No payload can end the node: a refused one (garbage, another kind, a malformed or out-of-range episode) is
counted in the status and logged with one line per reason at most every REFUSAL_LOG_PERIOD_S, naming the topic.

Main loop (one thread): do a chunk of owed updates (at most max_updates_per_spin), publish the policy when due,
checkpoint when due, then give the executor a turn -- without waiting while updates are owed, waiting up to
IDLE_WAIT_S for a message or the ack timer when none are (idle, not spinning). SIGINT or SIGTERM: finish the
chunk, checkpoint, exit 0. Parameters: `robot_rl.learner.config.LearnerConfig` (one per field).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String, UInt8MultiArray

from robot_rl.errors import UserError
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.refusals import RateLimitedLog
from robot_rl.learner.service import LearnerService, Outcome
from robot_rl.ros import protocol
from robot_rl.ros.params import declare_config

IDLE_WAIT_S = 0.1  # longest executor wait when no update is owed
MAX_TURN_S = 1.0  # longest run of callbacks (a burst of episodes, ~0.1 s each) before the next chunk of updates
REFUSAL_LOG_PERIOD_S = 5.0  # at most one log line per refusal reason this often
STATUS = "/learner/status"  # std_msgs/String JSON, latched: the learner's counters (see the module docstring)


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        self.cfg = declare_config(self, LearnerConfig())
        self.service = LearnerService(self.cfg, log=self.get_logger().info)
        self.acks_pub = self.create_publisher(String, protocol.ACKS, protocol.LATCHED_QOS)
        self.policy_pub = self.create_publisher(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
        self.delta_pub = self.create_publisher(UInt8MultiArray, protocol.POLICY_DELTA, protocol.LATCHED_QOS)
        self.status_pub = self.create_publisher(String, STATUS, protocol.LATCHED_QOS)
        self.refusal_log = RateLimitedLog(REFUSAL_LOG_PERIOD_S)
        self.create_subscription(UInt8MultiArray, protocol.EPISODES, self._on_episode, protocol.EPISODES_QOS)
        self.create_timer(self.cfg.ack_period_s, self._publish_acks)
        self.callbacks = 0  # messages and timer events handled (to tell an idle executor turn from a busy one)
        self.stop_requested = False
        self._last_acks: tuple[float, String] | None = None  # (monotonic s, message) of the last acks published
        self._heartbeat_stop = threading.Event()
        self._acks_lock = threading.Lock()  # the heartbeat never republishes an older count after a newer one
        self._publish_acks()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="acks-heartbeat", daemon=True)
        self._heartbeat.start()

    def _on_episode(self, msg: UInt8MultiArray) -> None:
        self.callbacks += 1
        try:
            result = self.service.ingest(protocol.msg_bytes(msg))
        except Exception as e:  # noqa: BLE001 - a bad episode (or a full disk) must not take the learner down
            self.service.refused["internal"] += 1
            self._log_refusal("internal", f"ingest failed: {type(e).__name__}: {e}")
            return
        if result.outcome in (Outcome.REFUSED, Outcome.GAP):
            self._log_refusal(result.reason, result.message)
        elif result.outcome is not Outcome.STORED:
            self.get_logger().info(result.message)
        self._publish_acks()

    def _log_refusal(self, reason: str, message: str) -> None:
        line = self.refusal_log.line(reason, f"{protocol.EPISODES}: {message} [{reason}]")
        if line is not None:
            self.get_logger().warning(line)

    def _publish_acks(self) -> None:
        self.callbacks += 1
        msg = protocol.acks_msg(self.service.acks())
        with self._acks_lock:
            self.acks_pub.publish(msg)
            self._last_acks = (time.monotonic(), msg)
        self.status_pub.publish(String(data=json.dumps(self.service.status(), sort_keys=True)))

    def _heartbeat_loop(self) -> None:
        """Republish the last acks message while the main loop is held up (a long ingest) for ack_period_s."""
        period_s = self.cfg.ack_period_s
        while not self._heartbeat_stop.wait(period_s / 2):
            with self._acks_lock:
                last = self._last_acks
                if last is None or time.monotonic() - last[0] < period_s:
                    continue
                try:
                    self.acks_pub.publish(last[1])
                except Exception:  # noqa: BLE001 - the node is shutting down
                    return
                self._last_acks = (time.monotonic(), last[1])

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        self._heartbeat.join(timeout=2.0)

    def publish_policy(self) -> None:
        """The full policy when its base is new (at start), else a delta of its trainable tensors."""
        push = self.service.take_push()
        if push.delta:
            self.delta_pub.publish(protocol.policy_msg(push.payload, push.version, protocol.POLICY_DELTA_KIND))
        else:
            self.policy_pub.publish(protocol.policy_msg(push.payload, push.version))
        self.get_logger().info(
            f"published policy version {push.version} ({'delta' if push.delta else 'full'}, "
            f"{len(push.payload) / 1e6:.2f} MB)"
        )

    def run(self, executor: SingleThreadedExecutor) -> None:
        """The main loop (see the module docstring) until SIGINT/SIGTERM, then a final checkpoint."""
        while rclpy.ok() and not self.stop_requested:
            if self.service.policy_due():  # first turn: at once, with the initial or the checkpoint's weights
                self.publish_policy()
            self.service.train_chunk()
            self.service.maybe_checkpoint()
            self._executor_turn(executor)
        path = self.service.checkpoint()
        self.get_logger().info(f"stopped: checkpoint {path}, acks {self.service.acks()}")

    def _executor_turn(self, executor: SingleThreadedExecutor) -> None:
        """Handle what is ready, for at most MAX_TURN_S (a burst of resent episodes); wait up to IDLE_WAIT_S for work only when
        no update is owed. rclpy's spin_once(0) can come back empty once with more ready (its wait set is rebuilt),
        so the turn ends after two empty calls in a row."""
        executor.spin_once(timeout_sec=0.0 if self.service.owed_updates else IDLE_WAIT_S)
        empty, end = 0, time.monotonic() + MAX_TURN_S
        while empty < 2 and time.monotonic() < end and not self.stop_requested:
            before = self.callbacks
            executor.spin_once(timeout_sec=0.0)
            empty = empty + 1 if self.callbacks == before else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-learner-node`."""
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = LearnerNode()

        def request_stop(signum: int, _frame) -> None:
            node.get_logger().info(f"{signal.Signals(signum).name}: checkpointing and stopping")
            node.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        t0 = time.perf_counter()
        node.run(executor)
        node.get_logger().info(f"ran {time.perf_counter() - t0:.0f} s")
    except ExternalShutdownException:
        pass
    except (ValueError, UserError) as err:  # a bad parameter or a run dir that is not this learner's: say which, exit 2
        print(f"robot-rl-learner-node: {err}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.stop_heartbeat()
            node.service.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
