"""A detached tmux session on a private server: a real terminal for tests that type keys into a program."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


class Pane:
    """One detached tmux session on its own server socket, running `command`."""

    def __init__(self, command: str, tmp: Path):
        self.sock = f"robot_rl_test_{os.getpid()}_{time.monotonic_ns()}"
        env = {k: v for k, v in os.environ.items() if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "TMUX")}
        self.env = env
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "kb", "-x", "120", "-y", "30", command)

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["tmux", "-L", self.sock, *args], env=self.env, check=True, capture_output=True, text=True, timeout=20
        )

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "kb", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "kb").stdout

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "-L", self.sock, "has-session", "-t", "kb"], env=self.env, capture_output=True
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], env=self.env, capture_output=True)
