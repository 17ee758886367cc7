"""No message can end the actor node or stop its tick: hostile messages on every topic, over real DDS.

The actor runs alone (wall clock, no sim: it waits for a reset service, holding the arm with a zero twist
every tick). This test process publishes malformed acks, policies (damaged, truncated inside a valid
wrapper, declaring huge sizes, NaN weights, another kind), teleop commands and robot inputs; after each,
the actor's `actor_status` must count the refusal on that topic. At the end the process is alive, still
commanding at its rate, and still takes a good policy. Run inside a private network namespace.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from geometry_msgs.msg import PoseStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rosprocs import Probe, start_process, stop_process
from safetensors.torch import save
from sensor_msgs.msg import JointState, Joy
from std_msgs.msg import Float32MultiArray, Float64, String, UInt8MultiArray

from robot_rl import wire
from robot_rl.acting.config import ActorConfig
from robot_rl.agents.config import AgentConfig
from robot_rl.agents.policy import Policy
from robot_rl.agents.policy_delta import DELTA_FORMAT, base_id, to_delta
from robot_rl.ros import protocol, topics

pytestmark = pytest.mark.ros

NS = f"/hostile_{os.getpid()}"
BIN = Path(sys.executable).parent
LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()
STATUS = f"{NS}/actor_status"
MAX_POLICY_BYTES = 1 << 20  # the actor's cap in this test: a larger /learner/policy message is refused unread


def _good_policy() -> Policy:
    torch.manual_seed(0)
    return Policy(AgentConfig(hidden_dims=(16, 16)), LAYOUT.obs_spec(), LAYOUT.action_dim)


def _inner(tensors: dict, config: dict) -> bytes:
    meta = {"config": json.dumps(config), wire.CHECKSUM_KEY: wire.CHECKSUM_PLACEHOLDER}
    return wire.stamp_checksum(save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta))


def _hostile_policies() -> list[tuple[str, UInt8MultiArray]]:
    good = _good_policy()
    state, config = dict(good.state_dict()), good.config_dict()
    name = next(k for k in state if k.endswith("weight"))
    truncated = {**state, name: state[name][:-1]}
    nan = {k: v.clone() for k, v in state.items()}
    nan[name][0, 0] = float("nan")
    huge = {**config, "agent_config": {**config["agent_config"], "hidden_dims": [10**9, 10**9]}}
    flipped = bytearray(protocol.policy_msg(good.to_bytes(), 3).data)
    flipped[len(flipped) // 2] ^= 0x40
    huge_header = json.dumps({"x": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4]}}).encode()
    return [
        ("truncated inner weights", protocol.policy_msg(_inner(truncated, config), 1)),
        ("NaN weights", protocol.policy_msg(_inner(nan, config), 2)),
        ("huge declared layers", protocol.policy_msg(_inner(state, huge), 3)),
        ("flipped byte", protocol.bytes_msg(bytes(flipped))),
        (
            "huge declared tensor",
            protocol.policy_msg(len(huge_header).to_bytes(8, "little") + huge_header + b"\0" * 4, 4),
        ),
        ("another kind", protocol.bytes_msg(wire.encode("episode", {"x": np.zeros(3)}))),
        ("garbage", protocol.bytes_msg(b"\xff" * 1000)),
        ("another layout", protocol.policy_msg(Policy(AgentConfig(hidden_dims=(8,)), {"state": [5]}, 2).to_bytes(), 5)),
        ("over max_policy_bytes", protocol.bytes_msg(b"\0" * (MAX_POLICY_BYTES + 1))),
    ]


def _hostile_deltas() -> list[tuple[str, UInt8MultiArray]]:
    """Deltas for the good policy's base (which the actor holds by then) that must be refused, and one for a base
    it does not hold."""
    good = _good_policy()
    base = base_id(good)
    nan = _good_policy()
    with torch.no_grad():
        next(p for n, p in nan.named_parameters() if n.endswith("weight"))[0, 0] = float("nan")
    header = json.dumps(
        {
            "__metadata__": {"format": DELTA_FORMAT, "base": base},
            "x": {"dtype": "F16", "shape": [10**12], "data_offsets": [0, 2]},
        }
    ).encode()
    wide = Policy(AgentConfig(hidden_dims=(32, 16)), LAYOUT.obs_spec(), LAYOUT.action_dim)  # same names, other shapes

    def msg(blob: bytes, version: int) -> UInt8MultiArray:
        return protocol.policy_msg(blob, version, protocol.POLICY_DELTA_KIND)

    return [
        ("NaN delta", msg(to_delta(nan, base), 43)),
        ("huge declared delta tensor", msg(len(header).to_bytes(8, "little") + header + b"\0" * 2, 44)),
        ("delta of other shapes", msg(to_delta(wide, base), 45)),
        ("a full policy on the delta topic", protocol.policy_msg(good.to_bytes(), 46)),
        ("garbage delta", protocol.bytes_msg(b"\x00" * 64)),
        ("delta for a base not held", msg(to_delta(good, "f" * 64), 47)),
    ]


def _joy(axes: list[float], buttons: list[int]) -> Joy:
    msg = Joy(axes=[float(a) for a in axes], buttons=buttons)
    msg.header.frame_id = topics.BASE_FRAME
    return msg


def _inputs() -> list[tuple[str, type, object]]:
    nan_pose = PoseStamped()
    nan_pose.pose.position.x = float("nan")
    nan_twist = TwistStamped()
    nan_twist.twist.linear.y = float("inf")
    return [
        (topics.JOINT_STATES, JointState, JointState(name=["a"], position=[float("nan")])),
        (topics.EE_POSE, PoseStamped, nan_pose),
        (topics.EE_TWIST, TwistStamped, nan_twist),
        (topics.GRIPPER_STATE, JointState, JointState(position=[0.01, 0.01, 0.01])),
        (topics.TASK_OBJECT_STATE, Float32MultiArray, Float32MultiArray(data=[1.0, 2.0])),
        (topics.TELEOP_COMMAND, Joy, _joy([float("nan")] * 20, [0] * 20)),
        (topics.TELEOP_COMMAND, Joy, _joy([0.0], [])),
    ]


@pytest.fixture(scope="module")
def actor(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ros_hostile")
    log = tmp / "actor.log"
    proc = start_process(
        [
            str(BIN / "robot-rl-actor-node"),
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-r",
            "__node:=actor",
            "-p",
            f"store:={tmp / 'store'}",
            "-p",
            "max_episode_steps:=12",
            "-p",
            f"max_policy_bytes:={MAX_POLICY_BYTES}",
        ],
        log,
    )
    probe = Probe("hostile_probe")
    probe.record(STATUS, String, protocol.LATCHED_QOS)
    probe.record(f"{NS}/{topics.EE_COMMAND}", TwistStamped, topics.COMMAND_QOS)
    try:
        assert probe.spin_until(lambda: probe.heard[STATUS], 60.0), f"no actor_status: {log.read_text()[-2000:]}"
        yield proc, probe, log
    finally:
        probe.close()
        stop_process(proc, log)


def _status(probe: Probe) -> dict:
    return json.loads(probe.heard[STATUS][-1][1].data)


def _refused(probe: Probe, topic: str) -> int:
    return _status(probe)["refused"].get(topic, 0)


def _send_and_expect_refusal(probe: Probe, pub, topic: str, msg, what: str) -> None:
    before = _refused(probe, topic)
    assert probe.wait_matched(pub), f"nothing subscribes to {topic}"  # else the one message is lost to discovery
    pub.publish(msg)
    assert probe.spin_until(lambda: _refused(probe, topic) > before, 8.0), f"{what} on {topic} was not refused"


def test_hostile_messages_on_every_topic_are_refused_counted_and_the_node_keeps_ticking(actor):
    proc, probe, log = actor
    pub = probe.node.create_publisher
    acks = pub(String, protocol.ACKS, protocol.LATCHED_QOS)
    for bad in (
        '{"x": 1e400}',
        '{"x": 99999999999999999999999}',
        '{"x": NaN}',
        '{"x": -1}',
        "[1, 2]",
        "{oops",
        '{"x": "3"}',
        '{"x": ' + "9" * 5000 + "}",
    ):
        _send_and_expect_refusal(probe, acks, protocol.ACKS, String(data=bad), f"acks {bad[:30]}")
    policy_pub = pub(UInt8MultiArray, protocol.POLICY, protocol.LATCHED_QOS)
    for what, msg in _hostile_policies():
        t0 = time.monotonic()
        _send_and_expect_refusal(probe, policy_pub, protocol.POLICY, msg, what)
        assert time.monotonic() - t0 < 3.0, f"{what} took {time.monotonic() - t0:.1f} s to refuse"
    for topic, msg_type, msg in _inputs():
        qos = topics.COMMAND_QOS if topic == topics.TELEOP_COMMAND else topics.STATE_QOS
        _send_and_expect_refusal(probe, pub(msg_type, f"{NS}/{topic}", qos), topic, msg, str(msg)[:60])

    assert proc.poll() is None, log.read_text()[-3000:]
    refused = _status(probe)["refused"]
    assert refused[protocol.ACKS] == 8 and refused[protocol.POLICY] == 9 and refused[topics.TELEOP_COMMAND] == 2
    # still ticking at its 10 Hz: zero twists (holding) keep coming, the tick count keeps rising
    ticks0, n0 = _status(probe)["ticks"], len(probe.heard[f"{NS}/{topics.EE_COMMAND}"])
    probe.spin_for(2.0)
    assert len(probe.heard[f"{NS}/{topics.EE_COMMAND}"]) - n0 >= 12
    assert _status(probe)["ticks"] - ticks0 >= 12
    # one log line per topic per 5 s at most: 9 refused policies, at most 3 lines about them
    lines = [ln for ln in log.read_text().splitlines() if f"refused a message on {protocol.POLICY}" in ln]
    assert 1 <= len(lines) <= 3, lines
    # and a good policy is still taken
    policy_pub.publish(protocol.policy_msg(_good_policy().to_bytes(), 42))
    assert probe.spin_until(lambda: _status(probe)["policy_version"] == 42, 10.0), log.read_text()[-2000:]
    # deltas on it that must not be applied: each refused on /learner/policy_delta, v42 kept
    delta_pub = pub(UInt8MultiArray, protocol.POLICY_DELTA, protocol.LATCHED_QOS)
    for what, msg in _hostile_deltas():
        _send_and_expect_refusal(probe, delta_pub, protocol.POLICY_DELTA, msg, what)
    assert _status(probe)["policy_version"] == 42 and _refused(probe, protocol.POLICY) == 9
    assert proc.poll() is None


def test_hostile_commands_to_the_sim_node_are_counted_in_sim_status_and_it_keeps_running(tmp_path):
    ns, log = f"/hostile_sim_{os.getpid()}", tmp_path / "sim.log"
    proc = start_process(
        [
            str(BIN / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={ns}",
            "-p",
            "camera_rate_hz:=0.0",
            "-r",
            f"/clock:={ns}/clock",
        ],
        log,
    )
    probe = Probe("hostile_sim_probe")
    status, joints = f"{ns}/sim_status", f"{ns}/{topics.JOINT_STATES}"
    probe.record(status, String, protocol.LATCHED_QOS)
    probe.record(joints, JointState, topics.STATE_QOS)
    try:
        assert probe.spin_until(lambda: probe.heard[status], 60.0), f"no sim_status: {log.read_text()[-2000:]}"
        refused = lambda topic: json.loads(probe.heard[status][-1][1].data)["refused"].get(topic, 0)  # noqa: E731
        nan_twist = TwistStamped()
        nan_twist.twist.linear.x = float("nan")
        wrong_frame = TwistStamped()
        wrong_frame.header.frame_id = "no_such_frame"
        twist_pub = probe.node.create_publisher(TwistStamped, f"{ns}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
        assert probe.wait_matched(twist_pub), f"nothing subscribes to {ns}/{topics.EE_COMMAND}"
        for n, msg in enumerate((nan_twist, wrong_frame), start=1):
            twist_pub.publish(msg)
            assert probe.spin_until(lambda n=n: refused(topics.EE_COMMAND) == n, 8.0), log.read_text()[-2000:]
        grip_pub = probe.node.create_publisher(Float64, f"{ns}/{topics.GRIPPER_COMMAND}", topics.COMMAND_QOS)
        assert probe.wait_matched(grip_pub), f"nothing subscribes to {ns}/{topics.GRIPPER_COMMAND}"
        grip_pub.publish(Float64(data=float("inf")))
        assert probe.spin_until(lambda: refused(topics.GRIPPER_COMMAND) == 1, 8.0), log.read_text()[-2000:]
        # lifecycle transitions the state does not have: rclpy's change_state raised, which ended the node
        for n, transition in enumerate((99, Transition.TRANSITION_ACTIVATE), start=1):  # it is active already
            request = ChangeState.Request(transition=Transition(id=transition))
            assert not probe.call(ChangeState, f"{ns}/sim_robot/change_state", request).success
            assert probe.spin_until(lambda n=n: refused("change_state") == n, 8.0), log.read_text()[-2000:]
        n0 = len(probe.heard[joints])
        probe.spin_for(1.0)
        assert proc.poll() is None and len(probe.heard[joints]) - n0 >= 5, log.read_text()[-2000:]
    finally:
        probe.close()
        stop_process(proc, log)
