"""The package installs, imports without ROS or MuJoCo, and every command has help."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
# directory on disk -> import name it installs as (pyproject's package-dir)
PACKAGE_DIRS = {
    "robot_rl": "robot_rl",
    "sim": "robot_rl_sim",
    "drivers": "robot_rl_drivers",
    "calibration": "robot_rl_calibration",
}


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_pyproject_lists_every_package_directory():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = set()
    for top, name in PACKAGE_DIRS.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            on_disk.add(".".join((name, *rel.parts)))
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "pyproject.toml lists packages that do not exist"


def test_core_imports_without_rclpy_or_mujoco():
    code = (
        "import sys, importlib, pkgutil, robot_rl\n"
        # peer_* are standalone scripts run by the peers' own Python (see robot_rl/bench/peer.py)
        "skip = ('robot_rl.nodes', 'robot_rl.ros', 'robot_rl.__main__', 'robot_rl.bench.peer_')\n"
        "for m in pkgutil.walk_packages(robot_rl.__path__, 'robot_rl.'):\n"
        "    if not m.name.startswith(skip): importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('rclpy', 'mujoco'))\n"
        "print(bad)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"core modules pulled in: {out.stdout}"


def test_core_source_never_imports_ros_or_mujoco():
    offenders = []
    for path in (ROOT / "robot_rl").rglob("*.py"):
        if {"nodes", "ros"} & set(path.relative_to(ROOT / "robot_rl").parts[:-1]):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in {"rclpy", "mujoco", "sensor_msgs", "geometry_msgs", "std_msgs"}:
                    offenders.append(f"{path.relative_to(ROOT)}: {n}")
    assert offenders == []


def test_gymnasium_ids_are_registered_by_importing_robot_rl():
    out = _python(
        "import gymnasium, robot_rl; print(sorted(k for k in gymnasium.registry if k.startswith('robot_rl/')))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['robot_rl/PegInsert-v0', 'robot_rl/PickCube-v0']"


def _all_command_paths() -> list[list[str]]:
    from robot_rl.cli import build_parser

    paths: list[list[str]] = []

    def walk(parser, prefix):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            paths.append(prefix)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, prefix + [name])

    walk(build_parser(), [])
    return paths


def test_every_command_answers_help():
    paths = _all_command_paths()
    assert len(paths) >= 6, f"expected the train/eval/demos/data/bench commands, found {paths}"
    for path in paths:
        out = subprocess.run(
            [sys.executable, "-m", "robot_rl", *path, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"},
        )
        assert out.returncode == 0, f"robot-rl {' '.join(path)} --help failed: {out.stderr}"
        assert "usage: robot-rl" in out.stdout


def test_unknown_task_error_names_the_choices():
    from robot_rl.envs import env_id_for_task

    with pytest.raises(ValueError, match=r"choose one of \['peg_insert', 'pick_cube'\]"):
        env_id_for_task("stack_blocks")
