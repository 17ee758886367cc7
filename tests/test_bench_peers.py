"""The peer side stays outside robot_rl: standalone scripts, run by another Python, failing with a clear message."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import robot_rl
from robot_rl.bench.peer import PEER_SCRIPTS, PeerError, run_peer_script

BENCH_DIR = Path(robot_rl.__file__).parent / "bench"
# transformers is not here: it is our own optional `reward` extra (VLM classifiers, robot_rl/reward/vlm.py)
PEER_PACKAGES = {"gym_hil", "lerobot", "tv_cpu_shim"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("script", [*PEER_SCRIPTS, "timing.py"])
def test_peer_scripts_and_the_timing_loop_import_nothing_from_robot_rl(script):
    roots = _imported_roots(BENCH_DIR / script)
    assert "robot_rl" not in roots, f"{script} must run in the peers venv, where robot_rl is not installed"


def test_no_robot_rl_module_outside_the_peer_scripts_imports_a_peer_package():
    offenders = {}
    for path in Path(robot_rl.__file__).parent.rglob("*.py"):
        if path.parent == BENCH_DIR and path.name in PEER_SCRIPTS:
            continue
        bad = _imported_roots(path) & PEER_PACKAGES
        if bad:
            offenders[str(path)] = sorted(bad)
    assert offenders == {}


def test_a_peer_script_run_without_the_peer_packages_fails_with_a_peer_error():
    # This interpreter is robot_rl's, which has no gym-hil: the script must fail and say which one.
    with pytest.raises(PeerError, match=r"peer script peer_gym_hil.py exited with code 1"):
        run_peer_script(sys.executable, "peer_gym_hil.py", ["--steps", "1", "--warmup-steps", "0"], timeout_s=120)


def test_an_unknown_peer_script_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="peer_gym_hil.py"):
        run_peer_script(sys.executable, "peer_other.py", [])
