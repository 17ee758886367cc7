"""Policy pushes over real DDS: a full policy on /learner/policy once, then deltas on /learner/policy_delta.

One sim node (state, 3x real time) and an actor process; this test process plays the learner with latched
publishers, as the learner node does. The actor loads the full policy and the delta; restarted, it gets both
latched messages again and acts with the delta's version at once; a delta for another base is refused and counted,
and the policy in use stays.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from geometry_msgs.msg import TwistStamped
from rosprocs import Probe, start_process, stop_process
from std_msgs.msg import UInt8MultiArray

from robot_rl.acting.config import ActorConfig
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.policy_delta import base_id, to_delta
from robot_rl.ros import protocol, topics
from robot_rl.ros.guard import LOG_PERIOD_S
from robot_rl.spaces import space_from_spec

pytestmark = pytest.mark.ros

NS = f"/push_test_{os.getpid()}"
BIN = Path(sys.executable).parent
LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()


def _start_actor(tmp: Path, n: int):
    log = tmp / f"actor_{n}.log"
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock", "-r", "__node:=actor"]
    proc = start_process(
        [
            str(BIN / "robot-rl-actor-node"),
            *ros,
            "-p",
            "use_sim_time:=true",
            "-p",
            "max_episode_steps:=12",
            "-p",
            f"store:={tmp / 'store'}",
            "-p",
            "on_learner_lost:=continue",
        ],
        log,
    )
    return proc, log


def test_a_restarted_actor_gets_the_full_policy_and_the_newest_delta_and_refuses_a_delta_for_another_base(tmp_path):
    torch.manual_seed(0)
    policy = make_agent(
        AgentConfig(hidden_dims=(32, 32)),
        space_from_spec(LAYOUT.obs_spec()),
        gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
    ).policy
    base = base_id(policy)
    full = protocol.policy_msg(policy.to_bytes(), 10)
    with torch.no_grad():
        for p in policy.actor.parameters():
            p.add_(0.1)
    delta = protocol.policy_msg(to_delta(policy, base), 20, protocol.POLICY_DELTA_KIND)

    probe = Probe("fake_learner")
    full_pub = probe.node.create_publisher(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
    delta_pub = probe.node.create_publisher(UInt8MultiArray, protocol.POLICY_DELTA, protocol.LATCHED_QOS)
    probe.record(f"{NS}/{topics.EE_COMMAND}", TwistStamped, topics.COMMAND_QOS)
    sim = start_process(
        [
            str(BIN / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-r",
            f"/clock:={NS}/clock",
            "-p",
            "real_time_factor:=3.0",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "seed:=1",
        ],
        tmp_path / "sim.log",
    )
    actor, log = _start_actor(tmp_path, 1)
    try:
        full_pub.publish(full)
        delta_pub.publish(delta)
        assert probe.spin_until(lambda: "policy v20 loaded" in log.read_text() or actor.poll() is not None, 60.0), (
            log.read_text()[-3000:]
        )
        assert stop_process(actor, log) == 0

        actor, log = _start_actor(tmp_path, 2)  # restarted: both latched messages again, in whichever order
        assert probe.spin_until(lambda: "policy v20 loaded" in log.read_text() or actor.poll() is not None, 60.0), (
            log.read_text()[-3000:]
        )
        n_twists = len(probe.heard[f"{NS}/{topics.EE_COMMAND}"])
        assert probe.spin_until(lambda: len(probe.heard[f"{NS}/{topics.EE_COMMAND}"]) > n_twists + 5, 20.0)

        if f"refused a message on {protocol.POLICY_DELTA}" in log.read_text():
            # the restart's latched delta came before the full policy ("does not hold ... keeping v-1"): refusals on
            # a topic log one line per LOG_PERIOD_S, so the next one would be counted but not logged before then
            probe.spin_until(lambda: False, LOG_PERIOD_S + 0.5)
        delta_pub.publish(protocol.policy_msg(to_delta(policy, "0" * 64), 30, protocol.POLICY_DELTA_KIND))
        assert probe.spin_until(lambda: "keeping v20" in log.read_text(), 20.0), log.read_text()[-3000:]
        text = log.read_text()
        assert f"refused a message on {protocol.POLICY_DELTA}" in text and "keeping v20" in text
        assert "policy v30 loaded" not in text and actor.poll() is None
    finally:
        probe.close()
        actor_rc, sim_rc = stop_process(actor, log), stop_process(sim)
    assert actor_rc == 0 and sim_rc == 0, log.read_text()[-3000:]
