"""`robot-rl up` as a real process: two namespaced sim robots that do not cross-talk, clean SIGINT, a dead node."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from robot_rl.ros import topics

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
ROBOTS = ("/robot_1", "/robot_2")


def _start_up(setup: str, log: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "robot-rl"), "up", setup, *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class _Probe:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("up_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.poses = {ns: [] for ns in ROBOTS}
        self.clocks = {ns: [] for ns in ROBOTS}
        for ns in ROBOTS:
            self.node.create_subscription(
                PoseStamped, f"{ns}/{topics.EE_POSE}", self.poses[ns].append, topics.STATE_QOS
            )
            self.node.create_subscription(Clock, f"{ns}/clock", self.clocks[ns].append, topics.CLOCK_QOS)
        self.command = self.node.create_publisher(TwistStamped, f"{ROBOTS[0]}/{topics.EE_COMMAND}", topics.COMMAND_QOS)

    def spin_until(self, predicate, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def pos(self, ns: str) -> np.ndarray:
        p = self.poses[ns][-1].pose.position
        return np.array([p.x, p.y, p.z])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _light_launch_dir(tmp_path: Path) -> Path:
    """The shipped tables with cheap sim parameters (no cameras), to keep CPU low on a shared machine."""
    launch = tmp_path / "launch"
    shutil.copytree(ROOT / "launch", launch, ignore=shutil.ignore_patterns("*.py"))
    params = yaml.safe_load((launch / "config" / "sim_robot.yaml").read_text())
    params["/**"]["ros__parameters"].update(camera_rate_hz=0.0, control_rate_hz=25.0)
    (launch / "config" / "sim_robot.yaml").write_text(yaml.safe_dump(params))
    return launch


def test_up_starts_two_robots_that_do_not_cross_talk_and_both_exit_cleanly_on_sigint(tmp_path):
    log = tmp_path / "up.log"
    proc = _start_up("sim_two_robots", log)  # the shipped table and parameters, cameras included
    probe = _Probe()
    try:
        up = probe.spin_until(lambda: all(probe.poses.values()) or proc.poll() is not None, timeout_s=60.0)
        assert up and proc.poll() is None, f"robots did not come up:\n{log.read_text()}"
        assert probe.node.get_publishers_info_by_topic("/clock") == []  # each sim clock is remapped into its namespace
        assert probe.spin_until(lambda: all(probe.clocks.values()), timeout_s=5.0)
        # commands sent before robot_1's reader matched are lost, and the 1 s below must move it 4 cm
        assert probe.spin_until(lambda: probe.command.get_subscription_count() >= 1, timeout_s=10.0)
        start = {ns: probe.pos(ns) for ns in ROBOTS}
        assert np.linalg.norm(start[ROBOTS[0]] - start[ROBOTS[1]]) > 0.005  # seeds 1 and 2: different starts
        msg = TwistStamped()
        msg.twist.linear.z = -0.1  # only robot_1 is told to move down
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            probe.command.publish(msg)
            probe.spin_until(lambda: False, timeout_s=0.05)
        moved = {ns: probe.pos(ns) - start[ns] for ns in ROBOTS}
        assert moved[ROBOTS[0]][2] < -0.04, f"robot_1 did not follow its command: {moved}"
        assert np.linalg.norm(moved[ROBOTS[1]]) < 0.002, f"robot_2 moved on robot_1's command: {moved}"
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.close()
    text = log.read_text()
    assert rc == 0, text
    assert "[/robot_1/sim_robot]" in text and "[/robot_2/sim_robot]" in text  # output prefixed per node
    assert "exit codes: {'/robot_1/sim_robot': 0, '/robot_2/sim_robot': 0}" in text


def test_up_stops_the_others_and_fails_when_one_node_dies(tmp_path):
    log = tmp_path / "up.log"
    proc = _start_up("sim_two_robots", log, "--launch-dir", str(_light_launch_dir(tmp_path)))
    try:
        deadline = time.monotonic() + 60
        while "sim robot up" not in log.read_text() or log.read_text().count("sim robot up") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        pids = dict(re.findall(r"(/robot_\d/sim_robot) \(pid (\d+)\)", log.read_text()))
        os.kill(int(pids["/robot_2/sim_robot"]), signal.SIGKILL)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert rc != 0, text
    assert "/robot_2/sim_robot exited with code -9; stopping the others" in text
    assert "'/robot_1/sim_robot': 0" in text  # the survivor was stopped cleanly
