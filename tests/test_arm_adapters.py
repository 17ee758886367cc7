"""Arm adapters without ROS: the sim adapter passes the robot contract, SDK adapters fail clearly without
their SDK, bad configs are refused naming the choices, rotations are right, and the hardware tables load."""

from __future__ import annotations

import dataclasses
import importlib.util
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import contracts  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from robot_rl.interfaces import EECommand  # noqa: E402
from robot_rl.nodes.table import load_table  # noqa: E402
from robot_rl_drivers import arm_pose  # noqa: E402
from robot_rl_drivers.adapter_franka import FrankaAdapter, FrankaConfig  # noqa: E402
from robot_rl_drivers.adapter_sim import SimArmAdapter, SimArmConfig  # noqa: E402
from robot_rl_drivers.adapter_ur import URAdapter, URConfig  # noqa: E402
from robot_rl_drivers.adapters import AdapterError, AdapterRobot, adapter_class  # noqa: E402


def _make_sim_robot(command_mode: str = "pose") -> AdapterRobot:
    adapter = SimArmAdapter(SimArmConfig(command_mode=command_mode), control_rate_hz=10.0)
    adapter.connect()
    return AdapterRobot(adapter)


@pytest.mark.parametrize("command_mode", ["pose", "velocity"])
def test_the_sim_adapter_passes_the_robot_contract(command_mode):
    contracts.check_robot_contract(lambda: _make_sim_robot(command_mode))


def test_a_non_finite_command_raises_and_nothing_reaches_the_arm():
    robot = _make_sim_robot()
    sent = robot.adapter.sent_commands
    with pytest.raises(ValueError, match="must be finite.*nothing was sent"):
        robot.command(EECommand(delta_pos_m=np.array([np.nan, 0.0, 0.0])))
    with pytest.raises(ValueError, match="shape"):
        robot.command(EECommand(delta_pos_m=np.zeros(2)))
    assert robot.adapter.sent_commands == sent
    robot.command(EECommand(delta_pos_m=np.array([0.01, 0.0, 0.0])))
    assert robot.adapter.sent_commands == sent + 1


def test_a_faulted_sim_arm_refuses_commands_until_recover():
    robot = _make_sim_robot()
    robot.adapter.inject_fault("collision reflex")
    assert robot.adapter.fault() == "simulated arm fault: collision reflex"
    with pytest.raises(AdapterError, match="collision reflex; call recover first"):
        robot.command(EECommand(delta_pos_m=np.array([0.01, 0.0, 0.0])))
    robot.adapter.recover()
    assert robot.adapter.fault() == ""
    start = robot.read().ee_pos_m
    for _ in range(3):
        robot.command(EECommand(delta_pos_m=np.array([0.0, 0.0, 0.02])))
        robot.advance(0.1)
    robot.advance(0.5)
    assert robot.read().ee_pos_m[2] - start[2] > 0.045


def test_go_home_returns_the_tool_to_the_home_pose_with_the_gripper_open():
    robot = _make_sim_robot()
    for _ in range(5):
        robot.command(EECommand(delta_pos_m=np.array([0.02, 0.02, -0.02]), gripper=1.0))
        robot.advance(0.1)
    assert np.linalg.norm(robot.read().ee_pos_m - np.array([0.5, 0.0, 0.25])) > 0.05
    robot.go_home()
    state = robot.read()
    assert np.linalg.norm(state.ee_pos_m - np.array([0.5, 0.0, 0.25])) < 0.005 and state.gripper_width_m > 0.07
    assert np.allclose(robot.target_pos_m, state.ee_pos_m, atol=1e-6)


@pytest.mark.parametrize(
    "make, module, pip_name",
    [
        (lambda: FrankaAdapter(FrankaConfig()), "franky", "franky-control"),
        (lambda: URAdapter(URConfig()), "rtde_control", "ur_rtde"),
    ],
)
def test_an_sdk_adapter_without_its_sdk_names_the_pip_package(make, module, pip_name):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(AdapterError, match=rf"needs the Python module '{module}'.*pip install {pip_name}"):
        make().connect()


def test_bad_adapter_names_and_configs_are_refused_naming_the_choices():
    with pytest.raises(
        ValueError, match=r"unknown arm adapter 'kuka'; choose one of \['franka', 'ros2_control', 'sim', 'ur'\]"
    ):
        adapter_class("kuka")
    with pytest.raises(ValueError, match=r"franka.command_mode 'torque'; choose one of \['pose', 'velocity'\]"):
        FrankaAdapter(FrankaConfig(command_mode="torque"))
    with pytest.raises(ValueError, match="ur.home_q_rad needs 6 joint angles, got 7"):
        URAdapter(URConfig(home_q_rad=(0.0,) * 7))
    with pytest.raises(ValueError, match=r"ur.gripper 'hand'; choose one of \['none', 'robotiq'\]"):
        URAdapter(URConfig(gripper="hand"))
    from robot_rl_drivers.adapter_ros2_control import config_with_preset

    with pytest.raises(ValueError, match=r"no ros2_control preset 'kuka'; choose one of \['franka', 'ur', 'none'\]"):
        config_with_preset("kuka")
    assert config_with_preset("ur").joint_states_topic == "/joint_states"
    assert config_with_preset("franka").joint_names[0] == "fr3_joint1"


def test_rotation_helpers_round_trip_and_compose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rotvec = rng.uniform(-1.0, 1.0, 3)
        q = arm_pose.quat_from_rotvec(rotvec)
        assert abs(np.linalg.norm(q) - 1.0) < 1e-12
        np.testing.assert_allclose(arm_pose.rotvec_from_quat(q), rotvec, atol=1e-9)
        other = arm_pose.quat_from_rotvec(rng.uniform(-1.0, 1.0, 3))
        r = arm_pose.rotation_between(other, q)
        composed = arm_pose.quat_mul(arm_pose.quat_from_rotvec(r), other)
        np.testing.assert_allclose(composed * np.sign(composed[0]), q * np.sign(q[0]), atol=1e-9)
        np.testing.assert_allclose(arm_pose.wxyz_from_xyzw(arm_pose.xyzw_from_wxyz(q)), q)
    # a quarter turn about z takes x to y
    qz = arm_pose.quat_from_rotvec(np.array([0.0, 0.0, np.pi / 2]))
    v = arm_pose.quat_mul(arm_pose.quat_mul(qz, np.array([0.0, 1.0, 0.0, 0.0])), arm_pose.quat_conj(qz))
    np.testing.assert_allclose(v, [0.0, 0.0, 1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("setup, adapter", [("franka", "franka"), ("ur", "ur")])
def test_hardware_tables_run_the_arm_node_cameras_actor_reward_and_learner_without_the_sim(setup, adapter):
    table = load_table(setup, executables=())  # the camera node may not be installed in every checkout
    assert [n.fqn for n in table.select(use_sim=False)] == [
        "/robot_1/arm",
        "/robot_1/front_camera",
        "/robot_1/wrist_camera",
        "/robot_1/actor",
        "/robot_1/reward",
        "/learner",
    ]
    arm = table.nodes[0]
    assert arm.executable == "robot-rl-arm-node" and arm.parameters[0].name == f"arm_{adapter}.yaml"
    params = yaml.safe_load(arm.parameters[0].read_text())["/**"]["ros__parameters"]
    assert params["adapter"] == adapter
    assert set(params[adapter]) <= {f.name for f in dataclasses.fields(adapter_class(adapter).config_class)}
    assert [n.fqn for n in table.select(use_sim=True)] == ["/learner"]


def test_the_arm_node_help_lists_every_parameter_and_each_adapters_own():
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "robot-rl-arm-node"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The arm driver node") and "usage: robot-rl-arm-node --ros-args" in out.stdout
    for line in (
        "  watchdog_timeout_s: float = 0.5",
        "  franka.robot_ip: str",
        "  ur.servo_gain: float",
        "  sim.command_mode",
        "  ros2_control.pose_command_topic: str",
        "  workspace_low_m: tuple[float, float, float] = (0.3, -0.25, 0.012)",
    ):  # values, not the names they come from
        assert line in out.stdout, line


def test_the_franka_adapter_drives_franky_against_the_franky_sim_protocol_simulator():
    """Real franky (libfranka protocol) against franky-sim's simulated FR3, when both are installed (neither is a
    dependency: `pip install franky-control franky-sim`). A smoke test of the adapter's use of the SDK: connect,
    state, the home joint motion, streamed impedance targets, the stop, the gripper. Timing tolerances are loose:
    without a real-time kernel the 1 kHz loop runs on a shared machine."""
    pytest.importorskip("franky")
    franky_sim = pytest.importorskip("franky_sim")
    from franky_sim.mujoco_simulator import MujocoSimulator

    with MujocoSimulator(enable_visualization=False) as sim:
        model = sim.add_robot()
        with franky_sim.SimulationServer(sim) as server:
            server.run_async()
            adapter = FrankaAdapter(
                FrankaConfig(
                    robot_ip=model.hostname,
                    realtime_kernel=False,
                    workspace_low_m=(0.3, -0.2, 0.2),
                    workspace_high_m=(0.6, 0.2, 0.5),
                )
            )
            adapter.connect()
            robot = AdapterRobot(adapter)
            try:
                robot.go_home()
                home = robot.read()
                assert np.linalg.norm(home.ee_pos_m - np.array([0.307, 0.0, 0.487])) < 0.01, home.ee_pos_m
                assert home.q_rad.shape == (7,) and abs(np.linalg.norm(home.ee_quat_wxyz) - 1) < 1e-6
                for _ in range(15):
                    robot.command(EECommand(delta_pos_m=np.array([0.01, 0.0, -0.01]), gripper=1.0))
                    robot.advance(0.1)
                robot.advance(1.0)
                moved = robot.read().ee_pos_m - home.ee_pos_m
                assert moved[0] > 0.08 and moved[2] < -0.08 and abs(moved[1]) < 0.02, moved
                assert robot.read().gripper_width_m < 0.04  # closing
                robot.hold()
                held = robot.read().ee_pos_m
                robot.advance(1.0)
                assert np.linalg.norm(robot.read().ee_pos_m - held) < 0.03
                assert adapter.fault() == ""
            finally:
                robot.close()


def _make_cell_robot(seed: int) -> AdapterRobot:
    """The sim adapter over a pick_cube task cell (what robot-rl-sim-node drives), connected with `seed`."""
    from robot_rl_sim.env import make_task_env

    cell = make_task_env("pick_cube", control_rate_hz=10.0).unwrapped
    adapter = SimArmAdapter(SimArmConfig(), control_rate_hz=10.0, cell=cell, seed=seed)
    adapter.connect()
    return AdapterRobot(adapter)


def test_the_sim_adapter_over_a_task_cell_passes_the_robot_contract():
    contracts.check_robot_contract(lambda: _make_cell_robot(seed=0))


def test_reset_of_a_task_cell_draws_the_seeded_next_start_and_sim_time_runs_on():
    robot, twin = _make_cell_robot(seed=3), _make_cell_robot(seed=3)
    cell = robot.adapter.cell
    assert np.array_equal(robot.read().ee_pos_m, twin.read().ee_pos_m)  # same seed, same first start
    start, t_start_s = robot.read().ee_pos_m, float(cell.data.time)
    robot.command(EECommand(delta_pos_m=np.array([0.0, 0.0, 0.02]), gripper=1.0))
    robot.advance(0.1)
    done = robot.go_home()
    assert done.startswith("reset pick_cube episode 1 at sim time") and float(cell.data.time) > t_start_s + 0.1
    assert float(np.linalg.norm(robot.read().ee_pos_m - start)) > 0.005  # a new randomised start
    assert np.allclose(robot.target_pos_m, robot.read().ee_pos_m) and robot.commanded_gripper == 0.0
    assert robot.read().gripper_width_m > 0.07  # opened by the reset
    assert np.array_equal(cell.task.workspace.low_m, robot.spec.workspace.low_m)  # the task's box
    robot.close()
    twin.close()


def test_state_problem_names_what_makes_a_driver_state_unusable_and_passes_a_good_one():
    from robot_rl_drivers.adapters import state_problem

    good = _make_sim_robot().read()
    assert state_problem(good, 7) == ""
    for change, words in [
        ({"q_rad": np.r_[good.q_rad[:6], np.nan]}, "non-finite joint positions"),
        ({"ee_pos_m": np.array([0.5, np.inf, 0.2])}, "non-finite tool position"),
        ({"gripper_width_m": float("nan")}, "non-finite gripper width"),
        ({"ee_quat_wxyz": np.zeros(4)}, "is not a unit quaternion"),
        ({"q_rad": good.q_rad[:5]}, "5 joint positions and 7 velocities for 7 joints"),
    ]:
        assert words in state_problem(dataclasses.replace(good, **change), 7), change


def test_a_streamed_home_move_brakes_to_stop_at_home_within_the_acceleration_limit():
    from robot_rl_drivers.arm_homing import HomeMove

    move = HomeMove(np.array([0.5, 0.0, 0.25]), np.array([0.0, 1.0, 0.0, 0.0]), 0.0, 1.0)
    dt_s, accel_m_s2, target = 0.02, 2.0, np.array([0.3, 0.1, 0.1])
    steps = []
    for _ in range(200):
        nxt = move.next_target(target, dt_s, accel_m_s2)
        steps.append(np.linalg.norm(nxt - target))
        target = nxt
    assert np.allclose(target, move.pos_m, atol=1e-12), target  # arrives exactly, no overshoot
    speeds = np.array(steps) / dt_s
    assert np.all(np.abs(np.diff(speeds)) / dt_s <= accel_m_s2 + 1e-9)  # braking within the limit
    assert move.distance(target, np.array([0.0, 0.0, 1.0, 0.0]))[1] == pytest.approx(np.pi)


# --- every preset's home pose lies inside its default workspace box ------------------------------------------
def _dh(a_m: float, d_m: float, alpha_rad: float, theta_rad: float, modified: bool) -> np.ndarray:
    """One Denavit-Hartenberg link transform: Craig's modified convention (Franka's) or the classic one (UR's)."""
    ca, sa, ct, st = np.cos(alpha_rad), np.sin(alpha_rad), np.cos(theta_rad), np.sin(theta_rad)
    if modified:
        return np.array(
            [[ct, -st, 0, a_m], [st * ca, ct * ca, -sa, -d_m * sa], [st * sa, ct * sa, ca, d_m * ca], [0, 0, 0, 1]]
        )
    return np.array(
        [[ct, -st * ca, st * sa, a_m * ct], [st, ct * ca, -ct * sa, a_m * st], [0, sa, ca, d_m], [0, 0, 0, 1]]
    )


# (a, d, alpha) per joint, as the makers publish them: Franka's FCI docs (FR3 = Panda), Universal Robots' UR5e table
FR3_DH = [
    (0, 0.333, 0),
    (0, 0, -np.pi / 2),
    (0, 0.316, np.pi / 2),
    (0.0825, 0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0, 0, np.pi / 2),
    (0.088, 0, np.pi / 2),
]
FR3_FLANGE_TO_TCP = (0.107, 0.1034)  # flange, then the Franka Hand's TCP (turned -pi/4 about z)
UR5E_DH = [
    (0, 0.1625, np.pi / 2),
    (-0.425, 0, 0),
    (-0.3922, 0, 0),
    (0, 0.1333, np.pi / 2),
    (0, 0.0997, -np.pi / 2),
    (0, 0.0996, 0),
]


def fr3_tcp(q_rad) -> np.ndarray:
    """4x4 pose of the Franka Hand's TCP in the FR3 base frame (O_T_EE)."""
    pose = np.eye(4)
    for (a, d, alpha), q in zip(FR3_DH, q_rad):
        pose = pose @ _dh(a, d, alpha, q, modified=True)
    pose = (
        pose
        @ _dh(0, FR3_FLANGE_TO_TCP[0], 0, 0, modified=True)
        @ _dh(0, FR3_FLANGE_TO_TCP[1], 0, -np.pi / 4, modified=True)
    )
    return pose


def ur5e_tool0(q_rad) -> np.ndarray:
    """4x4 pose of a UR5e's tool0 in the controller's base frame (what RTDE and tcp_pose_broadcaster report)."""
    pose = np.eye(4)
    for (a, d, alpha), q in zip(UR5E_DH, q_rad):
        pose = pose @ _dh(a, d, alpha, q, modified=False)
    return pose


def test_forward_kinematics_give_the_makers_published_poses():
    # franka_ros2's move-to-start pose: O_T_EE at (0.307, 0, 0.487), the hand pointing down
    start = fr3_tcp((0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4))
    np.testing.assert_allclose(start[:3, 3], [0.3069, 0.0, 0.4869], atol=5e-4)
    np.testing.assert_allclose(start[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-9)
    # a UR5e at zero is stretched out along -x of the base frame: x = a2 + a3, y = -(d4 + d6), z = d1 - d5
    np.testing.assert_allclose(ur5e_tool0(np.zeros(6))[:3, 3], [-0.8172, -0.2329, 0.0628], atol=1e-4)


def _node_box(path: str):
    from pathlib import Path

    from robot_rl.interfaces import WorkspaceBox

    params = yaml.safe_load(Path(path).read_text())["/**"]["ros__parameters"]
    return params, WorkspaceBox(tuple(params["workspace_low_m"]), tuple(params["workspace_high_m"]))


@pytest.mark.parametrize("preset, tool_pose", [("franka", fr3_tcp), ("ur", ur5e_tool0)])
def test_each_arm_presets_home_pose_lies_inside_its_default_boxes_pointing_down(preset, tool_pose):
    from pathlib import Path

    from robot_rl.interfaces import WorkspaceBox

    params, node_box = _node_box(str(Path(__file__).parents[1] / "launch" / "config" / f"arm_{preset}.yaml"))
    own = params[preset]
    home = tool_pose(own["home_q_rad"])
    adapter_box = WorkspaceBox(tuple(own["workspace_low_m"]), tuple(own["workspace_high_m"]))
    for box in (node_box, adapter_box):
        assert box.contains(home[:3, 3]) and box.contains(home[:3, 3] + np.array([0, 0, 0.03])), (home[:3, 3], box)
    assert home[2, 2] < -0.99, "the tool does not point down at home"
    default = adapter_class(preset).config_class()  # the adapter's defaults agree with its preset
    np.testing.assert_allclose(default.home_q_rad, own["home_q_rad"])


def test_the_sim_and_ros2_control_presets_home_poses_lie_inside_their_boxes():
    from robot_rl_drivers.adapter_ros2_control import config_with_preset, presets
    from robot_rl_drivers.arm_config import CELL_BOX

    assert CELL_BOX.contains(np.array(SimArmConfig().home_pos_m))
    for name in presets():
        cfg = config_with_preset(name)
        box = type(CELL_BOX)(cfg.workspace_low_m, cfg.workspace_high_m)
        assert box.contains(np.array(cfg.home_pos_m)), (name, cfg.home_pos_m, box)
    franka = config_with_preset("franka")  # the same pose as the franka adapter's home joints
    home = fr3_tcp(FrankaConfig().home_q_rad)
    np.testing.assert_allclose(franka.home_pos_m, home[:3, 3], atol=0.002)
    assert CELL_BOX.contains(np.array(franka.home_pos_m))  # the node's default box: reset can reach it
    ur = config_with_preset("ur")
    np.testing.assert_allclose(ur.home_pos_m, ur5e_tool0(URConfig().home_q_rad)[:3, 3], atol=0.002)
    for cfg, pose in ((franka, home), (ur, ur5e_tool0(URConfig().home_q_rad))):  # and the same orientation
        q = np.array(cfg.home_quat_wxyz)
        axes = [arm_pose.quat_mul(arm_pose.quat_mul(q, np.r_[0.0, e]), arm_pose.quat_conj(q))[1:] for e in np.eye(3)]
        np.testing.assert_allclose(np.array(axes).T, pose[:3, :3], atol=0.005)
