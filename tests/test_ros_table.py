"""Node tables, `robot-rl up --dry-run`, the launch file and the ROS package files (no DDS)."""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

from robot_rl.nodes.table import TableError, available_setups, load_table

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
ROBOT_RL = str(Path(sys.executable).parent / "robot-rl")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}


def _make_launch_dir(tmp_path: Path, nodes: list[dict]) -> Path:
    """A launch dir with the shipped params files and one setup 'custom' holding `nodes`."""
    shutil.copytree(LAUNCH / "config", tmp_path / "config")
    (tmp_path / "setups").mkdir()
    (tmp_path / "setups" / "custom.yaml").write_text(yaml.safe_dump({"description": "test", "nodes": nodes}))
    return tmp_path


def _node(**overrides) -> dict:
    return {
        "name": "sim_robot",
        "package": "robot_rl",
        "executable": "robot-rl-sim-node",
        "parameters": ["config/sim_robot.yaml"],
        "mode": "sim",
        **overrides,
    }


def test_shipped_setups_load_and_two_robots_get_their_own_namespace_seed_and_clock():
    assert {"sim_single", "sim_two_robots"} <= set(available_setups(LAUNCH))
    single = load_table("sim_single", LAUNCH)
    assert [n.fqn for n in single.nodes] == ["/sim_robot"]
    two = load_table("sim_two_robots", LAUNCH)
    assert [n.fqn for n in two.select(use_sim=True)] == ["/robot_1/sim_robot", "/robot_2/sim_robot"]
    assert two.select(use_sim=False) == ()
    args = two.nodes[1].ros_args()
    assert args == [
        "--ros-args",
        "-r",
        "__node:=sim_robot",
        "-r",
        "__ns:=/robot_2",
        "--params-file",
        str(LAUNCH / "config" / "sim_robot.yaml"),
        "-p",
        "seed:=2",
        "-r",
        "/clock:=/robot_2/clock",
    ]


def test_dry_run_prints_the_exact_command_line_of_every_node():
    out = subprocess.run(
        [ROBOT_RL, "up", "sim_two_robots", "--dry-run"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    table = load_table("sim_two_robots", LAUNCH)
    assert [shlex.split(line)[1:] for line in lines] == [n.ros_args() for n in table.nodes]
    assert all(Path(shlex.split(line)[0]).name == "robot-rl-sim-node" for line in lines)


def test_set_overrides_a_parameter_of_every_node_so_named_or_of_one_full_name_and_refuses_unknown_nodes():
    table = load_table("sim_two_robots_train", LAUNCH)
    both = table.with_sets(["actor:obs_mode:=pixels", "/robot_2/actor:seed:=7", "learner:demos:=demos/pick"])
    overrides = {n.fqn: dict(n.overrides) for n in both.nodes}
    assert overrides["/robot_1/actor"]["obs_mode"] == overrides["/robot_2/actor"]["obs_mode"] == "pixels"
    assert overrides["/robot_1/actor"]["seed"] == 1 and overrides["/robot_2/actor"]["seed"] == "7"
    assert both.nodes[-1].ros_args()[-2:] == ["-p", "demos:=demos/pick"]
    assert table.nodes == load_table("sim_two_robots_train", LAUNCH).nodes  # the table itself is unchanged
    with pytest.raises(TableError, match=r"has no node 'leaner'; its nodes are \['/robot_1/sim_robot'"):
        table.with_sets(["leaner:demos:=x"])
    with pytest.raises(TableError, match="expected NODE:PARAM:=VALUE"):
        table.with_sets(["learner:demos=x"])
    out = subprocess.run(
        [ROBOT_RL, "up", "sim_train", "--dry-run", "--set", "learner:out:=/data/run 1"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert out.returncode == 0 and shlex.split(out.stdout.splitlines()[-1])[-2:] == ["-p", "out:=/data/run 1"]


def test_up_names_the_valid_setups_when_the_setup_is_unknown():
    out = subprocess.run(
        [ROBOT_RL, "up", "sim_tree_robots", "--dry-run"], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert out.returncode == 2
    assert "no setup 'sim_tree_robots'" in out.stderr and "'sim_two_robots'" in out.stderr


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            [_node(mode="simulation")],
            r"node 'sim_robot', field 'mode': 'simulation'; choose one of \['sim', 'real', 'any'\]",
        ),
        ([_node(remap={"a": "b"})], r"node 'sim_robot': unknown fields \['remap'\]; valid fields are"),
        ([_node(executable="robot-rl-actor")], r"field 'executable': 'robot-rl-actor' is not installed; choose one of"),
        ([_node(parameters=["config/missing.yaml"])], r"field 'parameters': no file 'config/missing.yaml'"),
        ([_node(namespace="robot_1")], r"field 'namespace': 'robot_1' is not an absolute namespace"),
        ([_node(), _node()], r"two nodes are both named /sim_robot"),
        ([{"name": "x", "package": "robot_rl"}], r"node 'x': missing required fields \['executable', 'mode'\]"),
        ([_node(remaps={"/clock": "not a topic"})], r"field 'remaps': '/clock' -> 'not a topic'"),
    ],
)
def test_bad_tables_are_refused_naming_setup_node_and_field(tmp_path, nodes, message):
    launch_dir = _make_launch_dir(tmp_path, nodes)
    with pytest.raises(TableError, match=r"setup 'custom'.*" + message):
        load_table("custom", launch_dir)


def test_a_params_file_not_in_ros_format_is_refused(tmp_path):
    launch_dir = _make_launch_dir(tmp_path, [_node(parameters=["config/flat.yaml"])])
    (launch_dir / "config" / "flat.yaml").write_text("task: pick_cube\n")
    with pytest.raises(
        TableError, match="is not a ROS params file; expected '<node name or /\\*\\*>: {ros__parameters"
    ):
        load_table("custom", launch_dir)


def test_launch_file_compiles_declares_its_arguments_and_reads_the_same_table():
    source = (LAUNCH / "robot_rl.launch.py").read_text()
    tree = ast.parse(source)
    compile(tree, "robot_rl.launch.py", "exec")
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("robot_rl.nodes.table", "load_table") in imported and (
        "robot_rl.nodes.table",
        "available_setups",
    ) in imported
    declared = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            kw = {k.arg for k in call.keywords}
            declared[call.args[0].value] = kw
    assert set(declared) == {"setup", "use_sim", "classifier", "control_priority"}
    assert all({"default_value", "description"} <= kw for kw in declared.values())
    assert "choices" in declared["setup"] and "choices" in declared["use_sim"]
    assert "ros_args()" in source  # the same --ros-args as `robot-rl up`
    assert (
        'with_sets([f"reward:classifier:={classifier}"])' in source
    )  # classifier:=DIR is `--set reward:classifier:=DIR`
    assert 'with_sets([f"{fqn}:control_priority:={priority}" for fqn in actors])' in source  # on every actor


@pytest.mark.parametrize("setup", ["franka", "ur"])
def test_hardware_tables_run_the_reward_node_beside_the_actor_with_its_classifier_settable(setup):
    table = load_table(setup, LAUNCH)
    real = {n.fqn: n for n in table.select(use_sim=False)}
    reward, actor = real["/robot_1/reward"], real["/robot_1/actor"]
    assert reward.executable == "robot-rl-reward-node" and reward.namespace == actor.namespace  # its task/success
    assert dict(reward.overrides)["classifier"] == "runs/reward_pick"
    assert table.select(use_sim=True) == tuple(n for n in table.nodes if n.mode == "any")  # hardware only
    out = subprocess.run(
        [ROBOT_RL, "up", setup, "--use-sim", "false", "--dry-run", "--set", "reward:classifier:=/data/reward 2"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    line = next(shlex.split(x) for x in out.stdout.splitlines() if "robot-rl-reward-node" in x)
    assert line[1:] == [
        "--ros-args",
        "-r",
        "__node:=reward",
        "-r",
        "__ns:=/robot_1",
        "-p",
        "rate_hz:=10.0",
        "-p",
        "classifier:=/data/reward 2",
    ]


def test_wheel_installs_the_ament_marker_package_xml_and_launch_files(tmp_path):
    """What `ros2 launch robot_rl ...` looks up under <prefix>/share (verified here by building the wheel)."""
    assert "<name>robot_rl</name>" in (ROOT / "package.xml").read_text()
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    for patterns in data_files.values():
        for pattern in patterns:
            assert list(ROOT.glob(pattern)), f"pyproject data-files pattern {pattern} matches nothing"
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "package.xml"):
        shutil.copy(ROOT / name, src / name)
    for name in ("robot_rl", "sim", "drivers", "calibration", "launch"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("robot_rl-*.whl"))).namelist()
    data = "robot_rl-0.1.0.data/data/share/"
    for path in (
        "ament_index/resource_index/packages/robot_rl",
        "robot_rl/package.xml",
        "robot_rl/launch/robot_rl.launch.py",
        "robot_rl/launch/setups/sim_two_robots.yaml",
        "robot_rl/launch/config/sim_robot.yaml",
    ):
        assert data + path in names, f"{path} missing from the wheel's share/"
