"""Runs a peer script (in this folder) with the peer's Python as a separate process and reads its JSON lines.

Peers (gym-hil, LeRobot) are never dependencies of robot_rl: they live in their own virtual
environment (made by shared/peers/setup-peers.sh) and only the scripts `peer_*.py` import them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from robot_rl.bench.timing import available_cores

PEER_SCRIPTS = ("peer_gym_hil.py", "peer_lerobot_sac.py", "peer_lerobot_dataset.py", "peer_lerobot_write.py")


class PeerError(RuntimeError):
    """The peer measurement could not be taken."""


def check_peer_python(python: str | os.PathLike) -> Path:
    """The peer interpreter's path, or an error naming what was expected."""
    path = Path(python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise PeerError(
            f"--peer-python {str(python)!r} is not an executable file; expected the peers venv's interpreter, "
            "e.g. .peers-venv/bin/python (made by: bash shared/peers/setup-peers.sh .peers-venv)"
        )
    return path


def run_peer_script(
    python: str | os.PathLike, script: str, args: list[str], timeout_s: float | None = None
) -> list[dict]:
    """Run `python <this folder>/script *args`; its stderr passes through, each JSON line of its stdout is returned."""
    if script not in PEER_SCRIPTS:
        raise ValueError(f"unknown peer script {script!r}; choose one of {PEER_SCRIPTS}")
    interpreter = check_peer_python(python)
    env = {
        **os.environ,
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        "HF_HUB_OFFLINE": "1",  # the peer side never downloads
        "OMP_NUM_THREADS": str(available_cores()),
    }
    cmd = [str(interpreter), str(Path(__file__).with_name(script)), *args]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise PeerError(f"peer script {script} did not finish within {timeout_s:.0f} s") from e
    if proc.returncode != 0:
        raise PeerError(
            f"peer script {script} exited with code {proc.returncode} (its messages are above); "
            f"is {interpreter} the peers venv with gym-hil 0.1.14 and lerobot 0.4.4?"
        )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not results:
        raise PeerError(f"peer script {script} printed no JSON result; its stdout was:\n{proc.stdout}")
    return results
