"""`robot-rl check SETUP` as a real process against a real cell started by `robot-rl up`: the simulated cell passes
every check (the dry hold test included); a deliberately broken cell fails exactly the broken checks, exit 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from geometry_msgs.msg import PoseStamped
from rosprocs import Probe

from robot_rl.acting.config import ActorConfig
from robot_rl.nodes.check_plan import Verdict, layout_verdict, plan_robots, topic_verdict
from robot_rl.nodes.table import load_table
from robot_rl.ros import topics

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
ROBOT_RL = str(Path(sys.executable).parent / "robot-rl")


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"} | {"MUJOCO_GL": "egl"}


def _up(log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([ROBOT_RL, "up", *args], env=_env(), stdout=out, stderr=subprocess.STDOUT)


def _wait_for(proc: subprocess.Popen, log: Path, text: str, count: int = 1, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while log.read_text().count(text) < count:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _check(*args: str) -> tuple[int, dict[tuple[str, str], dict]]:
    """Exit code and {(robot, check): verdict} of `robot-rl check ... --json`."""
    out = subprocess.run(
        [ROBOT_RL, "check", *args, "--json", "--debug"],
        check=False,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=90,
    )
    assert out.stdout.strip().startswith("["), out.stderr
    return out.returncode, {(v["robot"], v["check"]): v for v in json.loads(out.stdout)}


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_simulated_cell_passes_every_check_with_the_hold_test(tmp_path):
    log = tmp_path / "up.log"
    proc = _up(log, "sim_single")
    try:
        _wait_for(proc, log, "sim robot up")
        rc, verdicts = _check("sim_single", "--duration", "3", "--hold-test")
    finally:
        _stop(proc)
    failed = [v for v in verdicts.values() if v["status"] != "PASS"]
    assert rc == 0 and not failed, failed
    expected = {
        "joint_states",
        "ee_pose",
        "ee_twist",
        "gripper_state",
        "front/image_raw",
        "front/camera_info",
        "wrist/image_raw",
        "wrist/camera_info",
        "frames",
        "workspace",
        "estop",
        "watchdog",
        "hold test",
    }
    assert {check for _, check in verdicts} == expected
    assert verdicts[("/", "joint_states")]["measured"].startswith(("49.", "50.", "51."))  # 50 Hz on sim time
    assert verdicts[("/", "front/image_raw")]["measured"].startswith(("9.", "10."))  # 10 Hz
    assert "front_optical_frame: front/image_raw, front/camera_info" in verdicts[("/", "frames")]["measured"]
    moved_mm = float(verdicts[("/", "hold test")]["measured"].split()[1])
    assert moved_mm < 2.0 and ", 0 commands" not in verdicts[("/", "hold test")]["measured"]


def _broken_launch_dir(tmp_path: Path) -> Path:
    """A two-robot setup: /robot_1 the sim cell (cameras expected at 10 Hz), /robot_2 the arm node over the empty
    sim cell with a box the tool is not in and a 30 s watchdog."""
    launch = tmp_path / "launch"
    shutil.copytree(ROOT / "launch", launch, ignore=shutil.ignore_patterns("*.py"))
    table = {
        "description": "a broken cell",
        "nodes": [
            {
                "name": "sim_robot",
                "package": "robot_rl",
                "executable": "robot-rl-sim-node",
                "namespace": "/robot_1",
                "parameters": ["config/sim_robot.yaml"],
                "overrides": {"control_rate_hz": 25.0},
                "remaps": {"/clock": "/robot_1/clock"},
                "mode": "sim",
            },
            {
                "name": "arm",
                "package": "robot_rl",
                "executable": "robot-rl-arm-node",
                "namespace": "/robot_2",
                "overrides": {
                    "adapter": "sim",
                    "workspace_low_m": [0.3, -0.25, 0.6],
                    "workspace_high_m": [0.7, 0.25, 0.9],
                    "watchdog_timeout_s": 30.0,
                    "control_rate_hz": 25.0,
                },
                "mode": "sim",
            },
        ],
    }
    (launch / "setups" / "broken.yaml").write_text(yaml.safe_dump(table))
    return launch


def test_a_broken_cell_fails_the_broken_checks_and_exits_1(tmp_path):
    launch = _broken_launch_dir(tmp_path)
    log = tmp_path / "up.log"
    # started with its cameras off: the table (what check expects) says 10 Hz
    proc = _up(log, "broken", "--launch-dir", str(launch), "--set", "sim_robot:camera_rate_hz:=0.0")
    commander = Probe("commander")  # another node that could command /robot_1: its hold test must not run
    commander.node.create_publisher(PoseStamped, "/robot_1/ee_target", topics.COMMAND_QOS)
    try:
        _wait_for(proc, log, "sim robot up")
        _wait_for(proc, log, "arm adapter 'sim' connected")
        rc, verdicts = _check(
            "broken", "--launch-dir", str(launch), "--duration", "4", "--hold-test"
        )  # 4 s: rates hold under load
    finally:
        commander.close()
        _stop(proc)
    failed = {key for key, v in verdicts.items() if v["status"] == "FAIL"}
    broken = {
        ("/robot_1", "front/image_raw"),
        ("/robot_1", "front/camera_info"),
        ("/robot_1", "wrist/image_raw"),
        ("/robot_1", "wrist/camera_info"),
        ("/robot_2", "workspace"),
        ("/robot_2", "watchdog"),
    }
    assert rc == 1
    assert broken <= failed, verdicts
    # On a loaded machine the sim may not keep its state topics' rate (a true finding the check reports); any
    # other failure is a defect of the check.
    slow = {key for key in failed - broken if key[0] == "/robot_1" and " Hz, age " in verdicts[key]["measured"]}
    assert failed - broken == slow, verdicts
    assert verdicts[("/robot_2", "hold test")]["status"] == "WARN"  # never commands a tool outside its box
    assert verdicts[("/robot_1", "hold test")] == {
        "status": "WARN",
        "robot": "/robot_1",
        "check": "hold test",
        "measured": "not run: /commander command the arm",
        "expected": "no other node publishing ee_command or ee_target",
    }
    assert verdicts[("/robot_1", "front/image_raw")]["measured"] == "0 message(s)"
    assert "outside in z" in verdicts[("/robot_2", "workspace")]["measured"]
    assert verdicts[("/robot_2", "watchdog")]["measured"] == "watchdog_timeout_s 30.0"
    assert verdicts[("/robot_2", "ee_pose")]["status"] == "PASS"  # the arm node on wall time: 25 Hz, fresh
    assert verdicts[("/robot_1", "estop")]["status"] == verdicts[("/robot_2", "estop")]["status"] == "PASS"


def test_usage_errors_exit_2_before_listening():
    for args, message in (
        (["nosuch"], "no setup 'nosuch'"),
        (["sim_single", "--duration", "0"], "--duration"),
        (["sim_single", "--policy", "/nonexistent"], "--policy /nonexistent: no such directory"),
        (["hw_cameras"], "has no arm node"),
    ):
        out = subprocess.run(
            [ROBOT_RL, "check", *args, "--use-sim", "false" if args[0] == "hw_cameras" else "true"],
            check=False,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
        assert out.returncode == 2 and out.stdout == "", out
        assert out.stderr.startswith("robot-rl: error: ") and message in out.stderr and out.stderr.count("\n") == 1


def test_the_plan_groups_each_robots_cameras_and_actor_and_a_stale_topic_fails():
    franka = plan_robots(load_table("franka", ROOT / "launch", executables=()), use_sim=False)
    assert [r.label for r in franka] == ["/robot_1"]
    assert franka[0].actor.fqn == "/robot_1/actor" and franka[0].actor_table["obs_mode"] == "pixels"
    assert franka[0].cameras({}) == {"front": (10.0, "front_optical_frame"), "wrist": (10.0, "wrist_optical_frame")}
    two = plan_robots(
        load_table("sim_two_robots_train", ROOT / "launch", executables=()).with_sets(
            ["/robot_2/sim_robot:camera_rate_hz:=5.0"]
        ),
        use_sim=True,
    )
    assert [r.clock_topic() for r in two] == ["/robot_1/clock", "/robot_2/clock"]
    assert two[0].cameras({"cameras": ["front"]}) == {} and two[1].cameras({}) == {
        "front": (5.0, "front_optical_frame"),
        "wrist": (5.0, "wrist_optical_frame"),
    }
    stamps = [i / 50 for i in range(100)]
    fresh = topic_verdict("/", "ee_pose", stamps, stamps[-1] + 0.01, 50.0, 0.3, "wall time")
    stale = topic_verdict("/", "ee_pose", stamps, stamps[-1] + 0.5, 50.0, 0.3, "wall time")
    slow = topic_verdict("/", "ee_pose", stamps[::2], stamps[-2] + 0.01, 50.0, 0.3, "wall time")
    assert [fresh.status, stale.status, slow.status] == ["PASS", "FAIL", "FAIL"]
    assert fresh.line() == "PASS / ee_pose: 50.0 Hz, age 0.010 s (>= 40.0 Hz, age <= 0.30 s on wall time)"
    assert isinstance(fresh, Verdict)


def test_the_layout_check_compares_the_actors_joints_and_a_policys_spaces():
    ur = plan_robots(load_table("ur", ROOT / "launch", executables=()), use_sim=False)[0].actor_table
    six = tuple(f"joint{i}" for i in range(1, 7))
    layout = ActorConfig(obs_mode="pixels", joint_names=six).layout()
    matching = (layout.obs_spec(), layout.action_dim)
    assert layout.obs_spec()["state"] == [17]  # 6 joints: 11 + 6
    ok = layout_verdict("/robot_1", ur, six + ("finger",), matching)
    assert ok.status == "PASS" and ok.measured.endswith("the policy's match"), ok
    franka_arm = layout_verdict("/robot_1", ur, tuple(f"joint{i}" for i in range(2, 9)), matching)
    assert franka_arm.status == "FAIL" and "joint_states lacks ['joint1']" in franka_arm.measured
    seven = ActorConfig(obs_mode="pixels").layout()  # a policy trained on the 7-joint arm
    wrong = layout_verdict("/robot_1", ur, six, (seven.obs_spec(), seven.action_dim))
    assert wrong.status == "FAIL" and "policy: observation spec" in wrong.measured and "[18]" in wrong.measured


def test_a_saved_policy_gives_its_spaces_to_the_layout_check(tmp_path):
    from robot_rl.agents.config import AgentConfig
    from robot_rl.agents.policy import Policy
    from robot_rl.cli.check import _policy_layout

    layout = ActorConfig().layout()  # state mode, pick_cube: 18 + 10
    Policy(AgentConfig(hidden_dims=(8, 8)), layout.obs_spec(), layout.action_dim).save(tmp_path / "policy")
    assert _policy_layout(tmp_path / "policy") == ({"state": [28]}, 4)
    verdict = layout_verdict("/", {}, tuple(f"joint{i}" for i in range(1, 8)), _policy_layout(tmp_path / "policy"))
    assert verdict.status == "PASS", verdict
