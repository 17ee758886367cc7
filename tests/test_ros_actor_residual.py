"""Residual RL through the actor node: the base policy runs in the actor, the learner's residual corrects it.

Real sim node and actor over DDS; this test process acks episodes and publishes policies. The base is a small
flow-matching BC policy replaying chunks of 4 (any base policy dir works: `robot-rl bc train` output or a saved
Policy): the residual acts per control step on the chunk step being executed, and reads it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from std_msgs.msg import UInt8MultiArray
from test_ros_actor_teleop import _Cell  # noqa: E402

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.residual import ResidualConfig, make_residual_agent
from robot_rl.bc import BCPolicyConfig, make_bc_policy
from robot_rl.bc.base import load_base_policy
from robot_rl.ros import protocol
from robot_rl.spaces import space_from_spec

pytestmark = pytest.mark.ros

NS = f"/residual_actor_{os.getpid()}"
STEPS = 15
BIN = Path(sys.executable).parent
LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()
SPACES = (space_from_spec(LAYOUT.obs_spec()), gym.spaces.Box(-1.0, 1.0, (4,), np.float32))


def _base_dir(tmp: Path) -> Path:
    """A flow-matching base executing chunks of 4 open loop (deterministic: zero initial noise)."""
    torch.manual_seed(1)
    cfg = BCPolicyConfig(kind="flow", chunk_size=4, execution="replay", hidden_dims=(32, 32), flow_noise_scale=0.0)
    policy = make_bc_policy(cfg, LAYOUT.obs_spec(), 4)
    with torch.no_grad():  # a base that clearly moves: a large velocity bias on the motion dims of every chunk step
        policy.head[-1].bias.view(4, 4)[:, :3] += 0.6
    policy.save(tmp / "base")
    return tmp / "base"


def _base_actions(base_dir: Path, episode: dict) -> np.ndarray:
    base = load_base_policy(base_dir)
    return np.stack([base.act({keys.STATE: s}) for s in episode[keys.STATE][: len(episode[keys.ACTION])]])


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ros_residual")
    base = _base_dir(tmp)
    sim_log, actor_log = tmp / "sim.log", tmp / "actor.log"
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim = _start(
        [
            str(BIN / "robot-rl-sim-node"),
            *ros,
            "-p",
            "real_time_factor:=2.0",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "seed:=4",
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
            f"base_policy:={base}",
            "-p",
            "deterministic:=true",
            "-p",
            f"max_episode_steps:={STEPS}",
            "-p",
            f"store:={tmp / 'store'}",
        ],
        actor_log,
    )
    probe = _Cell(NS)
    probe.pub_policy = probe.node.create_publisher(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
    try:
        probe.next_episodes(1, timeout_s=60.0)  # the base (plus noise) acts before any residual exists
        yield probe, actor_log, base
    finally:
        probe.close()
        actor_rc, sim_rc = _stop(actor, actor_log), _stop(sim, sim_log)
    assert actor_rc == 0 and sim_rc == 0, actor_log.read_text()[-3000:]


def test_before_any_residual_the_base_plus_noise_acts_and_its_action_is_recorded(cell):
    probe, log, base = cell
    (episode,) = probe.next_episodes(1)
    recorded = episode[keys.BASE_ACTION]
    assert np.allclose(recorded, _base_actions(base, episode), atol=1e-5)  # the base's action on each observation
    noise = episode[keys.POLICY_ACTION] - recorded
    assert 0.03 < float(np.std(noise)) < 0.3  # base_noise 0.1 (clipped at the action bounds)
    assert "residual on the base" in log.read_text()


def test_an_untrained_residual_acts_exactly_like_its_base_and_a_plain_policy_is_refused(cell):
    probe, log, _ = cell
    agent = make_residual_agent(AgentConfig(hidden_dims=(32, 32)), ResidualConfig(residual_scale=0.5), *SPACES)
    probe.pub_policy.publish(protocol.policy_msg(agent.policy.to_bytes(), version=3))
    assert probe.spin_until(lambda: "policy v3 loaded" in log.read_text(), 15.0), log.read_text()[-2000:]
    n = len(probe.episodes)
    under_v3 = lambda: [a for a, m in probe.episodes[n:] if m.policy_version == 3]  # noqa: E731
    assert probe.spin_until(lambda: len(under_v3()) >= 2, 40.0), log.read_text()[-2000:]
    episode = under_v3()[1]  # the second one ran under v3 from its start
    assert np.array_equal(episode[keys.POLICY_ACTION], episode[keys.BASE_ACTION])  # zero-initialised correction
    assert np.abs(episode[keys.BASE_ACTION][:, :3]).max() > 0.1

    plain = make_agent(AgentConfig(hidden_dims=(32, 32)), *SPACES).policy
    probe.pub_policy.publish(protocol.policy_msg(plain.to_bytes(), version=4))
    assert probe.spin_until(lambda: "refused policy v4" in log.read_text(), 15.0)
    line = next(x for x in log.read_text().splitlines() if "refused policy v4" in x)
    assert "keeping v3" in line and "needs a residual policy" in line
