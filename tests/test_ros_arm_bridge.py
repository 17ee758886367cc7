"""The ros2_control bridge (`Ros2ControlBridge`) against a running Cartesian driver, as real processes over real
DDS: the robot contract, refusing to connect to silent topics, driver faults and `recover`, and the arm node driving
it (holding when the driver goes silent). Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from geometry_msgs.msg import PoseStamped, TwistStamped
from rosprocs import Probe as _Probe  # noqa: E402
from rosprocs import start_process, stop_process
from std_msgs.msg import String
from std_srvs.srv import Trigger

from robot_rl.ros import convert, topics
from robot_rl_drivers.arm_node import ARM_STATUS, STATUS_QOS

pytestmark = pytest.mark.ros

BIN = Path(sys.executable).parent
WATCHDOG_S = 0.3  # the arm node's watchdog in these tests (as in test_ros_arm_node.py)


def _bridge_config(ns: str):
    from robot_rl_drivers.adapter_ros2_control import Ros2ControlConfig

    return Ros2ControlConfig(
        preset="none",
        joint_states_topic=f"{ns}/{topics.JOINT_STATES}",
        joint_names=tuple(f"joint{i}" for i in range(1, 8)),
        pose_topic=f"{ns}/{topics.EE_POSE}",
        twist_topic=f"{ns}/{topics.EE_TWIST}",
        command_mode="pose",
        pose_command_topic=f"{ns}/{topics.EE_TARGET}",
        command_frame_id=topics.BASE_FRAME,
        gripper_state_topic=f"{ns}/{topics.GRIPPER_STATE}",
        gripper_command_topic=f"{ns}/{topics.GRIPPER_COMMAND}",
        gripper_command_type="float64",
        gripper_command_value="closing",
        gripper_max_width_m=0.08,
        workspace_low_m=(0.3, -0.25, 0.012),
        workspace_high_m=(0.7, 0.25, 0.32),
    )


def test_the_ros2_control_bridge_passes_the_robot_contract_against_a_running_cartesian_driver(tmp_path):
    import contracts

    from robot_rl_drivers.adapter_ros2_control import Ros2ControlBridge
    from robot_rl_drivers.adapters import AdapterError, AdapterRobot

    ns = f"/bridge_test_{os.getpid()}"
    driver = start_process(
        [
            str(BIN / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={ns}",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "publish_clock:=false",
            "-p",
            "seed:=3",
            # a stiff controller: its target stops within a period (at 3 m/s^2 it overshoots 1.5 cm),
            # fast enough for the contract's diagonal pushes (0.025 m per 0.1 s on each axis: 0.43 m/s)
            "-p",
            "max_accel_m_s2:=30.0",
            "-p",
            "max_speed_m_s:=0.6",
            "-p",
            "max_step_m:=0.05",
        ],
        tmp_path / "driver.log",
    )
    made: list[AdapterRobot] = []

    def make_robot() -> AdapterRobot:
        """Connected, tool moved to the middle of the box (streamed targets, as any Cartesian controller takes them)."""
        bridge = Ros2ControlBridge(_bridge_config(ns), control_rate_hz=10.0)
        bridge.connect()
        robot = AdapterRobot(bridge)
        quat = robot.read().ee_quat_wxyz
        for _ in range(20):
            bridge.send_pose_target(np.array([0.5, 0.0, 0.2]), quat)
            bridge.set_gripper(0.0)
            time.sleep(0.1)
        time.sleep(0.3)
        robot.hold()
        made.append(robot)
        return robot

    try:
        deadline = time.monotonic() + 45.0
        while True:  # the driver needs a few seconds to come up; configure fails with a clear error until then
            try:
                robot = make_robot()
                break
            except AdapterError as err:
                assert time.monotonic() < deadline and driver.poll() is None, (
                    f"{err}\n{(tmp_path / 'driver.log').read_text()}"
                )
        assert np.linalg.norm(robot.read().ee_pos_m - np.array([0.5, 0.0, 0.2])) < 0.01
        assert robot.spec.joint_names == tuple(f"joint{i}" for i in range(1, 8))
        robot.close()
        contracts.check_robot_contract(make_robot)
        # the driver goes away: the bridge reports it as a fault, and recover refuses until it is back
        bridge = Ros2ControlBridge(_bridge_config(ns), control_rate_hz=10.0)
        bridge.connect()
        assert bridge.fault() == ""
        assert stop_process(driver) == 0
        time.sleep(0.8)
        assert "driver silent: nothing on" in bridge.fault()
        with pytest.raises(AdapterError, match="cannot recover: driver silent"):
            bridge.recover()
        bridge.disconnect()
    finally:
        stop_process(driver)
        for robot in made:
            robot.adapter.disconnect()


def test_the_bridge_refuses_to_connect_naming_the_silent_topics():
    from robot_rl_drivers.adapter_ros2_control import Ros2ControlBridge
    from robot_rl_drivers.adapters import AdapterError

    config = dataclasses.replace(_bridge_config("/nobody_here"), connect_timeout_s=0.5)
    with pytest.raises(
        AdapterError, match=r"no message on \['/nobody_here/joint_states', '/nobody_here/ee_pose'\] within 0.5 s"
    ):
        Ros2ControlBridge(config).connect()


def test_a_driver_fault_holds_the_arm_reports_it_and_recover_clears_it():
    """The node in this process (its timers not spun: `step` is called by hand, one control period each)."""
    from rclpy.parameter import Parameter

    from robot_rl_drivers.arm_node import ArmNode

    context = rclpy.Context()
    rclpy.init(context=context)
    node = ArmNode(
        context=context,
        namespace=f"/fault_test_{os.getpid()}",
        parameter_overrides=[Parameter("autostart", value="unconfigured")],
    )
    try:
        node.trigger_configure()
        node.trigger_activate()
        twist = convert.twist_msg(np.array([0.1, 0.0, 0.0]), np.zeros(3), 0.0, topics.BASE_FRAME)

        def run(periods: int) -> np.ndarray:
            for _ in range(periods):
                node._on_ee_command(twist)  # as if it arrived over DDS
                node.step()
            return node.robot.read().ee_pos_m

        start = node.robot.read().ee_pos_m
        moved = run(25) - start  # 0.5 s at 0.1 m/s
        assert 0.03 < moved[0] < 0.06, moved
        node.adapter.inject_fault("collision reflex")
        held = run(1)
        status = node.status()
        assert status["fault"] == "simulated arm fault: collision reflex" and status["hold_reason"] == "fault"
        assert np.linalg.norm(run(25) - held) < 0.003, "the arm moved while faulted"
        answer = node._on_recover(Trigger.Request(), Trigger.Response())
        assert answer.success and "fault" in answer.message and node.status()["fault"] == ""
        after = run(25)
        assert after[0] - held[0] > 0.03, "the arm did not obey after recover"
    finally:
        node._disconnect()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_the_arm_node_with_the_ros2_control_adapter_drives_a_running_driver_and_holds_when_it_goes_silent(tmp_path):
    """Two processes next to each other: the "driver" (the sim robot node in /<ns>_cell, see above) and the arm node in
    /<ns>_arm bridging to it; the probe commands the arm node exactly as an actor would."""
    ns = f"/bridge_node_test_{os.getpid()}"
    cell = f"{ns}_cell"
    config = _bridge_config(cell)
    params = {
        "adapter": "ros2_control",
        "control_rate_hz": 20.0,
        "watchdog_timeout_s": WATCHDOG_S,
        "ros2_control": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()},
    }
    (tmp_path / "arm.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
    driver = start_process(
        [
            str(BIN / "robot-rl-sim-node"),
            "--ros-args",
            "-r",
            f"__ns:={cell}",
            "-p",
            "camera_rate_hz:=0.0",
            "-p",
            "publish_clock:=false",
        ],
        tmp_path / "driver.log",
    )
    probe = _Probe("bridge_node_probe")
    arm_ns = f"{ns}_arm"
    probe.record(f"{arm_ns}/{topics.EE_POSE}", PoseStamped, topics.STATE_QOS)
    probe.record(f"{arm_ns}/{ARM_STATUS}", String, STATUS_QOS)
    probe.ee_command = probe.node.create_publisher(TwistStamped, f"{arm_ns}/{topics.EE_COMMAND}", topics.COMMAND_QOS)
    probe.record(f"{cell}/{topics.EE_POSE}", PoseStamped, topics.STATE_QOS)
    arm = None
    try:
        # the driver first: the bridge's configure waits only connect_timeout_s (5 s) for its messages
        up = probe.spin_until(lambda: probe.heard[f"{cell}/{topics.EE_POSE}"] or driver.poll() is not None, 45.0)
        assert up and driver.poll() is None, (tmp_path / "driver.log").read_text()
        arm = start_process(
            [
                str(BIN / "robot-rl-arm-node"),
                "--ros-args",
                "-r",
                f"__ns:={arm_ns}",
                "--params-file",
                str(tmp_path / "arm.yaml"),
            ],
            tmp_path / "arm.log",
        )
        status = lambda: json.loads(probe.heard[f"{arm_ns}/{ARM_STATUS}"][-1][1].data)  # noqa: E731
        assert probe.spin_until(
            lambda: (
                probe.heard[f"{arm_ns}/{ARM_STATUS}"]
                and status()["lifecycle"] == "active"
                and probe.heard[f"{arm_ns}/{topics.EE_POSE}"]
                and probe.ee_command.get_subscription_count() >= 1  # else the first commands are lost
            ),
            45.0,
        ), (tmp_path / "arm.log").read_text()

        def pose():
            return np.array([getattr(probe.heard[f"{arm_ns}/{topics.EE_POSE}"][-1][1].pose.position, a) for a in "xyz"])

        start = pose()
        msg = convert.twist_msg(np.array([0.0, 0.0, 0.08]), np.zeros(3), 0.0, "")
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            probe.ee_command.publish(msg)
            probe.spin_for(0.05)
        probe.spin_for(WATCHDOG_S + 0.5)
        moved = pose() - start
        assert 0.04 < moved[2] < 0.1 and abs(moved[0]) < 0.01 and abs(moved[1]) < 0.01, moved
        assert status()["hold_reason"] == "watchdog" and status()["commands_applied"] > 10
        stop_process(driver)
        assert probe.spin_until(lambda: "driver silent" in status()["fault"], 5.0), status()
        assert "arm fault, holding" in (tmp_path / "arm.log").read_text()
    finally:
        stop_process(driver)
        if arm is not None:
            assert stop_process(arm) == 0, (tmp_path / "arm.log").read_text()
        probe.close()
