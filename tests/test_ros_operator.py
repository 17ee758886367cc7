"""The scripted operator node against the sim node over real DDS: it sees ground truth and takes over on teleop/command.

Nobody moves the simulated arm, so the task makes no progress: the operator must take over after its
patience, drive towards the cube, give back, and stop once its per-episode budget is spent.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from sensor_msgs.msg import Joy
from std_msgs.msg import Float32MultiArray

from robot_rl.ros import teleop_convert, topics

pytestmark = pytest.mark.ros

NS = f"/operator_test_{os.getpid()}"


def _stop_all(op, sim, op_log: Path, sim_log: Path, context, node, executor) -> None:
    """Stop both nodes and the probe; each node must exit cleanly."""
    rc_op, rc_sim = _stop(op), _stop(sim)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    assert rc_op == 0, op_log.read_text()
    assert rc_sim == 0, sim_log.read_text()


def _probe(name: str, ns: str):
    """A probe node in a context of its own, recording `ns`'s teleop/command (decoded) and task/object_state."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    heard, states = [], []
    node.create_subscription(
        Joy,
        f"{ns}/{topics.TELEOP_COMMAND}",
        lambda m: heard.append(teleop_convert.teleop_fields_from_msg(m, topics.BASE_FRAME)),
        topics.COMMAND_QOS,
    )
    node.create_subscription(
        Float32MultiArray,
        f"{ns}/{topics.TASK_OBJECT_STATE}",
        lambda m: states.append(np.array(m.data)),
        topics.STATE_QOS,
    )
    return context, node, executor, heard, states


def test_the_operator_node_takes_over_an_idle_robot_towards_the_cube_within_its_budget(tmp_path):
    sim_log, op_log = tmp_path / "sim.log", tmp_path / "operator.log"
    context, node, executor, heard, states = _probe("operator_probe", NS)
    # the probe listens before the nodes start, and the operator waits 2 s of sim time before its first take-over,
    # so discovery is done before anything is engaged (on a loaded machine too)
    sim = _start(
        [
            str(Path(sys.executable).parent / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-p",
            "control_rate_hz:=10.0",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "seed:=3",
            "-r",
            f"/clock:={NS}/clock",
        ],
        sim_log,
    )
    op = _start(
        [
            sys.executable,
            "-m",
            "robot_rl.nodes.operator",
            "--ros-args",
            "-r",
            f"__ns:={NS}",
            "-p",
            "use_sim_time:=true",
            "-r",
            f"/clock:={NS}/clock",
            "-p",
            "control_rate_hz:=10.0",
            "-p",
            "patience_steps:=20",
            "-p",
            "takeover_steps:=3",
            "-p",
            "max_interventions:=2",
            "-p",
            "max_fraction:=1.0",
        ],
        op_log,
    )
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(h["counts"]["release"] >= 2 for h in heard):
            executor.spin_once(timeout_sec=0.05)
            assert sim.poll() is None and op.poll() is None, (
                f"a node died:\n{sim_log.read_text()}\n{op_log.read_text()}"
            )
        engaged = [h for h in heard if h["engaged"]]
        assert engaged, f"the operator never took over:\n{op_log.read_text()}"
        twist = engaged[0]["twist"]
        cube_to_tcp = states[-1][7:10]
        assert float(np.dot(twist[:3], -cube_to_tcp)) > 0.5 * np.linalg.norm(twist[:3]) * np.linalg.norm(cube_to_tcp), (
            f"the operator should head for the cube: twist {twist[:3]}, cube - tcp {-cube_to_tcp}"
        )
        assert engaged[0]["gripper"] == 0.0  # approaching with the gripper open
        # 2 take-overs of 3 steps each (the command QoS keeps only the newest message, so a busy probe may miss
        # some engaged ones: count the events and read the operator's own tally)
        assert heard[-1]["counts"]["take_over"] == 2 and heard[-1]["counts"]["release"] == 2
        assert "take-over 2, 6 steps driven" in op_log.read_text()
        # the budget is spent: 2 more seconds of sim time (20 steps) and no third take-over
        n = len(heard)
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert len(heard) - n >= 15 and all(h["connected"] and not h["engaged"] for h in heard[n:])
        assert heard[-1]["counts"]["take_over"] == 2
    finally:
        _stop_all(op, sim, op_log, sim_log, context, node, executor)


def test_the_operator_node_says_failure_once_a_held_peg_is_pushed_into_the_hand(tmp_path):
    """peg_insert with end_lost and no take-over budget: the probe presses the peg onto the hole's rim, 3 mm off its
    axis, through ee_command; the operator node (its state expert and the slip from ee_pose) says `failure` once the
    peg has been pushed LOST_SLIP_M into the hand, and never takes over."""
    from geometry_msgs.msg import TwistStamped

    ns = f"{NS}_peg"
    sim_log, op_log = tmp_path / "sim.log", tmp_path / "operator.log"
    context, node, executor, heard, states = _probe("operator_peg_probe", ns)
    push = node.create_publisher(TwistStamped, f"{ns}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
    common = ["--ros-args", "-r", f"__ns:={ns}", "-r", f"/clock:={ns}/clock", "-p", "task:=peg_insert"]
    sim = _start(
        [str(Path(sys.executable).parent / "robot-rl-sim-node"), *common, "-p", "control_rate_hz:=10.0",
         "-p", "camera_rate_hz:=0.0", "-p", "seed:=0"],
        sim_log,
    )  # fmt: skip
    op = _start(
        [sys.executable, "-m", "robot_rl.nodes.operator", *common, "-p", "use_sim_time:=true",
         "-p", "end_lost:=true", "-p", "max_fraction:=0.0"],
        op_log,
    )  # fmt: skip
    try:
        end, msg, settled = time.monotonic() + 90, TwistStamped(), None
        while time.monotonic() < end and not any(h["counts"]["failure"] for h in heard):
            executor.spin_once(timeout_sec=0.05)
            assert sim.poll() is None and op.poll() is None, (
                f"a node died:\n{sim_log.read_text()}\n{op_log.read_text()}"
            )
            if states and settled is None:  # the sim's start-up reset (the grasp closing) is done well before this
                settled = time.monotonic() + 3.0
            if (
                settled is not None and time.monotonic() >= settled
            ):  # a P-controller on the tip: 3 mm off the hole's axis, 3 cm below its rim
                tip_minus_rim = states[-1][12:15]
                vel = np.clip(2.0 * (np.array([0.003, 0.0, -0.03]) - tip_minus_rim), -0.05, 0.05)
                msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in vel)
                push.publish(msg)
        assert any(h["counts"]["failure"] for h in heard), (
            f"no failure from the operator in 90 s (tip - rim {states[-1][12:15] if states else None}):\n"
            f"{op_log.read_text()}"
        )
        assert heard[-1]["counts"]["take_over"] == 0 and not any(h["engaged"] for h in heard)
        assert "failure" in op_log.read_text()
    finally:
        _stop_all(op, sim, op_log, sim_log, context, node, executor)
