"""The README's set-up script: idempotent set-up, and 'no tests ran' is a failure, not a pass."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    return subprocess.run([str(ROOT / "run.sh"), *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)


def test_test_command_fails_when_pytest_collects_nothing():
    out = _run("test", "-q", "-p", "no:cacheprovider", "tests/test_packaging.py", "-k", "matches_no_test_at_all")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "collected no tests" in out.stderr


def test_test_command_passes_pytest_exit_status_through():
    out = _run("test", "-q", "-p", "no:cacheprovider", "tests/test_packaging.py", "-k", "pyproject_lists")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout


def test_unknown_subcommand_names_the_choices():
    out = _run("deploy")
    assert out.returncode == 2
    assert "choose one of: train, test, robot-rl, setup" in out.stderr
