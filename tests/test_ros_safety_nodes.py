"""The safety filter's guarantee through the arm node (sim adapter) and the sim robot node (the same node over the
task cell), in process: each
control period (`step()`) moves the commanded tool target by at most max_step_m, whatever the command; a
target outside the box comes back over many periods; a non-finite target or reading holds the arm, never
ends the node. Real nodes, real MuJoCo; commands are set where the message callbacks put them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rclpy

from robot_rl.interfaces import WorkspaceBox

pytestmark = pytest.mark.ros

MAX_STEP_M = 0.01
BOX = WorkspaceBox(low_m=(0.3, -0.25, 0.012), high_m=(0.45, 0.25, 0.32))  # tightened: home x = 0.5 is outside


@pytest.fixture
def arm_node():
    from robot_rl_drivers.arm_node import ArmNode

    rclpy.init(
        args=[
            "arm",
            "--ros-args",
            "-r",
            f"__ns:=/safety_arm_{os.getpid()}",
            "-p",
            "adapter:=sim",
            "-p",
            "autostart:=unconfigured",
            "-p",
            f"max_step_m:={MAX_STEP_M}",
            "-p",
            f"workspace_low_m:={list(BOX.low_m)}",
            "-p",
            f"workspace_high_m:={list(BOX.high_m)}",
        ]
    )
    node = ArmNode()
    node.trigger_configure()
    node.trigger_activate()
    yield node
    node._disconnect()
    node.destroy_node()
    rclpy.try_shutdown()


def _command(node, vel_m_s, t_s) -> None:
    """What `_on_ee_command` does with a valid twist."""
    node._vel_m_s, node._angvel_rad_s = np.asarray(vel_m_s, dtype=np.float64), np.zeros(3)
    node._target, node._commanded = None, True
    node.watchdog.feed(t_s)


def test_the_arm_node_brings_an_out_of_box_target_back_at_the_limits_and_holds_on_nan(arm_node):
    import time

    robot = arm_node.robot
    assert robot.target_pos_m[0] > BOX.high_m[0] + 0.04  # home is outside the tightened box: not snapped in
    distance, steps = robot.target_pos_m[0] - BOX.high_m[0], 0
    while not BOX.contains(robot.target_pos_m, tol_m=1e-9):
        _command(arm_node, (1e6, -1e6, 1e6), time.monotonic())  # huge, and pushing farther out in x
        before = robot.target_pos_m.copy()
        arm_node.step()
        moved = robot.target_pos_m - before
        assert np.linalg.norm(moved) <= MAX_STEP_M + 1e-12 and moved[0] <= 0, moved
        assert robot.target_pos_m[0] - BOX.high_m[0] <= distance + 1e-12
        distance, steps = robot.target_pos_m[0] - BOX.high_m[0], steps + 1
        assert steps < 100, robot.target_pos_m
    assert steps >= 5 and arm_node.hold_reason == ""
    robot.target_pos_m = np.array([np.nan, 0.0, 0.2])  # a corrupt target: rejected, held, the node lives on
    _command(arm_node, (0.01, 0, 0), time.monotonic())
    rejected = arm_node.counts["rejected"]
    arm_node.step()
    assert arm_node.hold_reason == "rejected" and arm_node.counts["rejected"] == rejected + 1
    assert np.isfinite(robot.target_pos_m).all()  # the hold re-synced the target to the measured tool
    arm_node.step()
    assert arm_node.hold_reason == ""  # commands flow again


@pytest.fixture
def sim_node():
    from robot_rl_sim.node import SimRobotNode

    rclpy.init(
        args=[
            "sim",
            "--ros-args",
            "-r",
            f"__ns:=/safety_sim_{os.getpid()}",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            f"max_step_m:={MAX_STEP_M}",
            "-p",
            "publish_clock:=false",
        ]
    )
    node = SimRobotNode()
    node.trigger_configure()
    node.trigger_activate()
    yield node
    node.close()
    rclpy.try_shutdown()


def test_the_sim_node_bounds_each_step_and_holds_on_a_nan_target(sim_node):
    """The sim robot is the arm node over the task cell: the same path bounds it, on sim time."""
    robot = sim_node.robot
    for _ in range(20):
        _command(sim_node, (1e6, 1e6, -1e6), sim_node.sim_time_s)
        before = robot.target_pos_m.copy()
        sim_node.step()
        moved = robot.target_pos_m - before
        assert np.linalg.norm(moved) <= MAX_STEP_M + 1e-12, moved
        assert sim_node.env.task.workspace.contains(robot.target_pos_m, tol_m=1e-9)
    assert sim_node.hold_reason == "" and sim_node.counts["applied"] == 20
    robot.target_pos_m = np.array([np.nan, 0.0, 0.2])  # a corrupt target: rejected and held, no exception
    _command(sim_node, (0.01, 0, 0), sim_node.sim_time_s)
    sim_node.step()
    assert sim_node.hold_reason == "rejected" and np.isfinite(robot.target_pos_m).all()
