"""Kill a real `robot-rl train` process with SIGKILL once a condition holds: the crash tests' one helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable


def kill_train_when(argv: list[str], done: Callable[[], bool], timeout_s: float = 120.0) -> None:
    """Start `python -m robot_rl train ARGV`, wait until `done()` (failing if it exits or stalls), then SIGKILL it."""
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot_rl", "train", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + timeout_s
    try:
        while not done():
            assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, f"training made no progress in {timeout_s:.0f} s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
