"""Nodes as real processes for the ROS tests: start one logging to a file, stop it with SIGINT as a terminal would.

conftest.py already drops the ROS wheels' re-exec guard from the environment children inherit.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def start_process(cmd: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """`cmd` with stdout and stderr in `log`, log lines unbuffered so a test can read them as they happen."""
    env = os.environ | {"PYTHONUNBUFFERED": "1", "RCUTILS_LOGGING_BUFFERED_STREAM": "0"}
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen, log: Path | None = None, timeout_s: float = 20.0) -> int:
    """SIGINT, then its exit code; killed (and the code of that) if it has not exited within `timeout_s`."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
