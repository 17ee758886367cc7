"""A person takes over the actor node through `teleop/command`: real sim node, real actor, real DDS.

This test process plays both the learner (acks every episode) and a teleop node (publishes the
teleop/command Joy layout at 50 Hz, or falls silent). The actor acts with uniform random actions
(warmup=random), so any motion that is not the person's shows; with success_from:=teleop only the
person's keys judge episodes (as when recording demos on hardware before a reward classifier exists). Tests run in order on one cell:
take-over and release, the success key, re-record, and a device lost mid-intervention.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from sensor_msgs.msg import Joy
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import keys
from robot_rl.interfaces import TeleopCommand
from robot_rl.ros import protocol, topics
from robot_rl.ros.teleop_convert import teleop_command_msg
from robot_rl.teleop.link import EventCounts

pytestmark = pytest.mark.ros

NS = f"/teleop_actor_{os.getpid()}"
STEPS = 30  # max_episode_steps (3 s of sim time)
BIN = Path(sys.executable).parent


class _Cell:
    """Learner stand-in (auto-acks, heartbeat) + teleop sender + a watch on the robot's commands."""

    def __init__(self, ns: str = NS):
        self.ns, self.actor_id = ns, f"{ns}/actor"
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("teleop_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.episodes: list[tuple[dict, protocol.EpisodeMeta]] = []
        self.arrivals: list[float] = []  # monotonic arrival time of each episode
        self.twists: list[tuple[float, np.ndarray]] = []  # (arrival, [vx, vy, vz, wx, wy, wz])
        self.acked, self._last_beat, self._last_teleop = 0, 0.0, 0.0
        self.teleop: TeleopCommand | None = None  # what the "device" sends; None = silent
        self.counts = EventCounts()
        sub = self.node.create_subscription
        sub(UInt8MultiArray, protocol.EPISODES, self._on_episode, protocol.EPISODES_QOS)
        deep = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        sub(
            TwistStamped,
            f"{ns}/{topics.EE_COMMAND}",
            lambda m: self.twists.append(
                (
                    time.monotonic(),
                    np.array(
                        [
                            m.twist.linear.x,
                            m.twist.linear.y,
                            m.twist.linear.z,
                            m.twist.angular.x,
                            m.twist.angular.y,
                            m.twist.angular.z,
                        ]
                    ),
                )
            ),
            deep,
        )
        self.pub_acks = self.node.create_publisher(String, protocol.ACKS, protocol.LATCHED_QOS)
        self.pub_teleop = self.node.create_publisher(Joy, f"{ns}/{topics.TELEOP_COMMAND}", topics.COMMAND_QOS)

    def _on_episode(self, msg: UInt8MultiArray) -> None:
        arrays, meta = protocol.episode_from_msg(msg)
        if meta.index == self.acked:
            self.episodes.append((arrays, meta))
            self.arrivals.append(time.monotonic())
            self.acked += 1
            self.pub_acks.publish(protocol.acks_msg({self.actor_id: self.acked}))

    def send(self, twist=(0, 0, 0, 0, 0, 0), engaged: bool = False, events: tuple[str, ...] = ()) -> None:
        self.counts.add(events)
        self.teleop = TeleopCommand(np.asarray(twist, dtype=np.float64), None, engaged)

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            now = time.monotonic()
            if now - self._last_beat > 0.5:
                self.pub_acks.publish(protocol.acks_msg({self.actor_id: self.acked}))
                self._last_beat = now
            if self.teleop is not None and now - self._last_teleop > 0.02:
                self.pub_teleop.publish(teleop_command_msg(self.teleop, self.counts.snapshot(), 0.0, topics.BASE_FRAME))
                self._last_teleop = now
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def next_episodes(self, n: int, timeout_s: float = 30.0) -> list[dict]:
        """The next `n` episodes that arrive (their arrays)."""
        start = len(self.episodes)
        assert self.spin_until(lambda: len(self.episodes) >= start + n, timeout_s), "no episodes arrived"
        return [a for a, _ in self.episodes[start : start + n]]

    def first_episode(self, predicate, within: int = 4) -> dict:
        """The first of the next `within` episodes that satisfies `predicate` (one may be in flight at a change)."""
        for _ in range(within):
            (episode,) = self.next_episodes(1)
            if predicate(episode):
                return episode
        raise AssertionError(f"none of the next {within} episodes matched")

    def twists_during_last_episode(self) -> np.ndarray:
        """Commands that reached the robot between the arrivals of the last two episodes (margins cut off)."""
        t0, t1 = self.arrivals[-2] + 0.3, self.arrivals[-1] - 0.3
        return np.array([t for a, t in self.twists if t0 < a < t1])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ros_teleop")
    sim_log, actor_log, store = tmp / "sim.log", tmp / "actor.log", tmp / "actor_store"
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim = _start(
        [
            str(BIN / "robot-rl-sim-node"),
            *ros,
            "-p",
            "real_time_factor:=1.0",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "seed:=3",
        ],
        sim_log,
    )
    actor = _start(
        [
            str(BIN / "robot-rl-actor-node"),
            *ros,
            "-r",
            "__node:=actor",
            "-p",
            "use_sim_time:=true",
            "-p",
            "warmup:=random",
            "-p",
            f"max_episode_steps:={STEPS}",
            "-p",
            f"store:={store}",
            "-p",
            "teleop_timeout_s:=1.0",
            "-p",
            "success_from:=teleop",
        ],
        actor_log,
    )
    probe = _Cell()
    try:
        probe.next_episodes(2, timeout_s=60.0)  # up: the actor acts and sends (resends of the first one are done)
        assert actor.poll() is None and sim.poll() is None
        yield probe, actor_log
    finally:
        probe.close()
        actor_rc, sim_rc = _stop(actor, actor_log), _stop(sim, sim_log)
    assert actor_rc == 0 and sim_rc == 0, actor_log.read_text()[-3000:] + sim_log.read_text()[-2000:]


def test_an_engaged_person_drives_the_arm_with_a_pure_translation_and_releasing_gives_it_back(cell):
    probe, log = cell
    probe.send(twist=(0, 0, -0.5, 0, 0, 0), engaged=True)  # straight down in the base frame, half speed
    probe.first_episode(lambda e: e[keys.IS_INTERVENTION].any(), within=6)  # the link is up (DDS discovery)
    episode = probe.first_episode(lambda e: e[keys.IS_INTERVENTION].all())  # a whole episode under the person's command
    motion = episode[keys.ACTION][:, :3]
    assert np.all(motion[:, :2] == 0.0), "a pure z command moved the arm sideways"
    assert np.all(motion[:, 2] <= 0.0) and motion[:, 2].min() == pytest.approx(-0.5, abs=1e-5)
    # the policy's own (random) proposals were recorded next to what was executed
    assert np.abs(episode[keys.POLICY_ACTION][:, :3] - motion).max() > 0.2
    z = episode[keys.STATE][:, 2]
    assert z[-1] < z[0] - 0.02  # the tool went down
    sent = probe.twists_during_last_episode()
    assert len(sent) > 10 and np.abs(sent[:, [0, 1, 3, 4, 5]]).max() == 0.0  # no sideways motion, no rotation

    probe.send(engaged=False)  # connected, hands off: the policy acts again
    released = probe.first_episode(lambda e: not e[keys.IS_INTERVENTION].any())
    # the policy's own actions went out (motion only changed by the safety filter's rate limits)
    assert np.array_equal(released[keys.ACTION][:, 3], released[keys.POLICY_ACTION][:, 3])
    assert np.abs(released[keys.ACTION][:, :2]).max() > 0.2  # random policy actions, not the person's
    assert probe.spin_until(lambda: "interventions 30/30" in log.read_text(), 5.0)


def test_the_success_key_ends_the_episode_terminated_with_reward_one(cell):
    probe, log = cell
    probe.next_episodes(1)  # an episode just began
    probe.spin_until(lambda: False, 1.0)  # ~10 steps in
    probe.send(events=("success",))
    (episode,) = probe.next_episodes(1)
    n = len(episode[keys.ACTION])
    assert 3 <= n < STEPS
    assert episode[keys.TERMINATED][-1] and not episode[keys.TERMINATED][:-1].any()
    assert episode[keys.REWARD].tolist() == [0.0] * (n - 1) + [1.0] and episode[keys.SUCCESS][-1]
    assert probe.spin_until(lambda: "(success from teleop)" in log.read_text(), 5.0)  # logged after it was sent


def test_a_rerecorded_episode_is_neither_stored_nor_sent(cell):
    probe, log = cell
    probe.next_episodes(1)
    before = probe.acked
    probe.spin_until(lambda: False, 1.0)
    probe.send(events=("rerecord",))
    assert probe.spin_until(lambda: "episode discarded" in log.read_text(), 10.0), log.read_text()[-2000:]
    (episode,) = probe.next_episodes(1)
    assert probe.episodes[-1][1].index == before  # the next index: nothing was sent for the discarded one
    assert len(episode[keys.ACTION]) == STEPS  # a whole fresh episode, not the remainder of the discarded one


def test_a_device_lost_mid_intervention_holds_the_arm_until_the_episode_ends(cell):
    probe, log = cell
    probe.next_episodes(1)
    probe.send(twist=(0.5, 0, 0, 0, 0, 0), engaged=True)
    probe.spin_until(lambda: False, 1.0)
    probe.teleop = None  # the device (and its node) fall silent mid-intervention
    t_lost = time.monotonic() + 1.0  # noticed after teleop_timeout_s
    (episode,) = probe.next_episodes(1)
    flags = episode[keys.IS_INTERVENTION]
    first = int(np.argmax(flags))
    last = len(flags) - 1 - int(np.argmax(flags[::-1]))
    assert flags.sum() >= 3 and flags[first : last + 1].all()  # one take-over ...
    after = episode[keys.ACTION][last + 1 :]
    # ... then the arm held to the episode's end: zero commands, except that the safety filter brings a measured
    # pose that overshot the workspace box back inside (a few tens of micrometres here)
    assert len(after) >= 5 and np.abs(after[:, :3]).max() < 1e-2
    held = np.array([t for a, t in probe.twists if t_lost + 0.3 < a < probe.arrivals[-1] - 0.3])
    assert len(held) >= 3 and np.abs(held).max() < 1e-3  # the random policy did not resume (same box correction)
    (next_episode,) = probe.next_episodes(1)  # a new episode: the policy acts (nobody is connected)
    assert np.abs(next_episode[keys.ACTION][:, :3]).max() > 0.2 and not next_episode[keys.IS_INTERVENTION].any()
