"""The actor node as a real process next to the sim node, with this test process playing the learner.

One sim node (state topics only, 3x real time) and one actor (state observations, sim time) serve every
test in this file, in order: a policy from the learner drives the arm and episodes reach the learner in
the gym env's layout; withheld acks bring resends, acks stop them; a policy for another layout is
refused; a policy that outputs NaN never reaches the robot. Run inside a private network namespace.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import rclpy
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore
from robot_rl.ros import protocol, topics
from robot_rl.spaces import space_from_spec
from robot_rl_sim.env import make_task_env

pytestmark = pytest.mark.ros

NS = f"/actor_test_{os.getpid()}"
ACTOR_ID = f"{NS}/actor"
STEPS = 12  # max_episode_steps: short episodes, many of them
BIN = Path(sys.executable).parent
LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()


def _policy_bytes(obs_spec: dict, action_dim: int = 4, nan: bool = False) -> bytes:
    torch.manual_seed(0)
    policy = make_agent(
        AgentConfig(hidden_dims=(32, 32)),
        space_from_spec(obs_spec),
        gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32),
    ).policy
    if nan:
        with torch.no_grad():
            for p in policy.actor.parameters():
                p.fill_(float("nan"))
    return policy.to_bytes()


class _Learner:
    """Plays the learner (episodes in, acks and policy out) and watches the robot's command topic."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("fake_learner", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.episodes: list[tuple[float, dict, protocol.EpisodeMeta]] = []
        self.twists: list[np.ndarray] = []
        self.auto_ack = False  # ack every episode as it arrives, in order (as the learner does)
        self.beating = False  # republish the ack count every 0.5 s (the learner's heartbeat)
        self.acked = 0
        self._last_beat = 0.0
        sub = self.node.create_subscription
        sub(UInt8MultiArray, protocol.EPISODES, self._on_episode, protocol.EPISODES_QOS)
        deep = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)  # see every command, not the newest
        sub(
            TwistStamped,
            f"{NS}/{topics.EE_COMMAND}",
            lambda m: self.twists.append(np.array([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z])),
            deep,
        )
        self.pub_policy = self.node.create_publisher(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
        self.pub_acks = self.node.create_publisher(String, protocol.ACKS, protocol.LATCHED_QOS)

    def _on_episode(self, msg: UInt8MultiArray) -> None:
        arrays, meta = protocol.episode_from_msg(msg)
        self.episodes.append((time.monotonic(), arrays, meta))
        if self.auto_ack and meta.index == self.acked:
            self.acked += 1
            self.ack(self.acked)

    def ack(self, count: int) -> None:
        self.pub_acks.publish(protocol.acks_msg({ACTOR_ID: count}))

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            if self.beating and time.monotonic() - self._last_beat > 0.5:
                self.ack(self.acked)
                self._last_beat = time.monotonic()
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """(learner probe, actor log, actor store path) with a sim node and an actor running in namespace NS."""
    tmp = tmp_path_factory.mktemp("ros_actor")
    sim_log, actor_log, store = tmp / "sim.log", tmp / "actor.log", tmp / "actor_store"
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim = _start(
        [
            str(BIN / "robot-rl-sim-node"),
            *ros,
            "-p",
            "real_time_factor:=3.0",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "seed:=1",
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
            f"max_episode_steps:={STEPS}",
            "-p",
            f"store:={store}",
            "-p",
            "resend_interval_s:=1.0",
            "-p",
            "learner_timeout_s:=3.0",
        ],
        actor_log,
    )
    learner = _Learner()
    try:
        # up = the actor ticks on the sim's clock: it holds the arm with zero twists
        up = learner.spin_until(lambda: learner.twists or actor.poll() is not None or sim.poll() is not None, 45.0)
        assert up and actor.poll() is None and sim.poll() is None, actor_log.read_text() + sim_log.read_text()
        yield learner, actor_log, store
    finally:
        learner.close()
        actor_rc, sim_rc = _stop(actor, actor_log), _stop(sim, sim_log)
    assert actor_rc == 0, f"actor exited {actor_rc} on SIGINT:\n{actor_log.read_text()[-3000:]}"
    assert sim_rc == 0, f"sim exited {sim_rc} on SIGINT:\n{sim_log.read_text()[-3000:]}"
    stored = EpisodeStore.open(store, verify=True)  # consistent after SIGINT: every chunk reads
    assert stored.n_episodes >= 1 + max(m.index for _, _, m in learner.episodes)


def test_a_policy_from_the_learner_drives_the_arm_and_episodes_reach_it_in_the_gym_layout(cell):
    learner, log, store = cell
    learner.twists.clear()
    learner.spin_for(1.5)  # warmup=hold: no policy, no episodes, only zero twists
    assert learner.episodes == [] and learner.twists and np.abs(learner.twists).max() == 0.0
    learner.pub_policy.publish(protocol.policy_msg(_policy_bytes(LAYOUT.obs_spec()), version=5))
    assert learner.spin_until(lambda: len(learner.episodes) >= 2, 30.0), log.read_text()[-3000:]
    assert "policy v5 loaded from /learner/policy" in log.read_text()
    _, episode, meta = learner.episodes[0]
    assert (meta.actor_id, meta.index, meta.policy_version) == (ACTOR_ID, 0, 5)
    assert [m.index for _, _, m in learner.episodes[:2]] == [0, 1]

    # the gym env's layout: same task meta fields and the same keys, dtypes and per-step shapes as a recorded demo
    env = make_task_env("pick_cube", obs_mode="state")
    for field in ("obs_layout", "action_layout", "action_scale", "control_rate_hz", "workspace"):
        assert meta.task_meta[field] == env.unwrapped.task_meta()[field], field
    demo = MemoryEpisodeStore()
    rec = EpisodeRecorder(demo)
    obs, info = env.reset(seed=0)
    rec.start(obs, info)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    rec.step(env.action_space.sample(), obs, reward, terminated, truncated, info)
    rec.end()
    env.close()
    assert {k: (v.dtype, v.shape[1:]) for k, v in episode.items()} == {
        k: (v.dtype, v.step_shape) for k, v in demo.spec.items()
    }
    assert len(episode[keys.ACTION]) == STEPS and episode[keys.TRUNCATED][-1] and not episode[keys.TERMINATED].any()
    periods = np.diff(episode[keys.T_CAPTURE])  # sim-time capture stamps, one per control period (jitter: load)
    assert np.all(periods > 0) and 0.06 <= np.median(periods) <= 0.14, periods
    assert np.array_equal(episode[keys.BASE_ACTION], episode[keys.ACTION]) and not episode[keys.IS_INTERVENTION].any()

    # the policy moved the arm within the episode, within the action scale (max_step_m per 0.1 s = 0.25 m/s)
    ee_pos = episode[keys.STATE][:, :3]
    assert float(np.linalg.norm(ee_pos - ee_pos[0], axis=1).max()) > 0.005
    assert np.abs(learner.twists).max() > 0.02 and np.linalg.norm(learner.twists, axis=1).max() <= 0.3 + 1e-9
    # the actor's own store holds the same bytes it sent
    stored = EpisodeStore.open(store)
    for key, value in stored.get_episode(0).items():
        assert np.array_equal(value, episode[key]), key


def test_episodes_the_learner_lacks_are_resent_until_it_acks_them(cell):
    learner, log, _ = cell
    learner.beating = True
    learner.spin_for(3.0)  # a learner that holds nothing: everything is resent, lowest first
    sent = Counter(m.index for _, _, m in learner.episodes)
    assert sent[0] >= 2 and sent[1] >= 2, f"episodes received per index: {dict(sent)}"
    assert "resending episode 0 (the learner holds 0)" in log.read_text()
    learner.acked = max(i for i in sent if all(j in sent for j in range(i + 1))) + 1
    learner.ack(learner.acked)
    learner.auto_ack = True
    learner.spin_for(0.5)
    before = len(learner.episodes)
    learner.spin_for(3.0)
    later = Counter(m.index for _, _, m in learner.episodes[before:])
    assert later, "no new episodes while acking"
    assert max(later.values()) == 1, f"acknowledged episodes were sent again: {dict(later)}"


def test_a_policy_for_another_observation_layout_is_refused_and_the_old_one_kept(cell):
    learner, log, _ = cell
    learner.pub_policy.publish(protocol.policy_msg(_policy_bytes({"state": [18]}, action_dim=7), version=6))
    assert learner.spin_until(lambda: "refused policy v6" in log.read_text(), 10.0)
    line = next(x for x in log.read_text().splitlines() if "refused policy v6" in x)
    assert "keeping v5" in line and "observation spec {'state': [18]}" in line and "action dim 7 != 4" in line
    n = len(learner.episodes)
    assert learner.spin_until(lambda: len(learner.episodes) > n + 1, 15.0)
    assert learner.episodes[-1][2].policy_version == 5


def test_a_policy_with_nan_weights_is_refused_and_the_old_one_kept(cell):
    """Non-finite weights never load (robot_rl.agents.policy); NaN actions from a loaded policy are held by the
    SafetyFilter (tests/test_safety*.py)."""
    learner, log, _ = cell
    learner.pub_policy.publish(protocol.policy_msg(_policy_bytes(LAYOUT.obs_spec(), nan=True), version=7))
    learner.spin_for(2.0)  # taken after the next tick (its refusal log line may be rate-limited: v6 just logged one)
    assert "policy v7 loaded" not in log.read_text()
    n = len(learner.episodes)
    assert learner.spin_until(lambda: len(learner.episodes) > n + 1, 15.0)
    assert learner.episodes[-1][2].policy_version == 5
