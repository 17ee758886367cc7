"""The keyboard teleop driven through a real terminal: a tmux pane, keys sent with `tmux send-keys`.

The reader runs as `python -m robot_rl.teleop.keyboard --jsonl FILE` (no ROS) in a detached tmux
session on a private tmux server; the test types into the pane and reads the commands it logged.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest
from tmuxpane import Pane as _Pane  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt install tmux)")


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _wait_for(path: Path, predicate, timeout_s: float = 10.0) -> list[dict]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        lines = _lines(path)
        if predicate(lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no logged command matched within {timeout_s} s; last lines: {_lines(path)[-3:]}")


@pytest.fixture
def pane(tmp_path):
    log, stty = tmp_path / "commands.jsonl", tmp_path / "stty_after.txt"
    reader = f"{shlex.quote(sys.executable)} -m robot_rl.teleop.keyboard --rate-hz 50 --jsonl {shlex.quote(str(log))}"
    # after the reader exits, record the terminal's settings: it must have put them back
    p = _Pane(
        f"sh -c {shlex.quote(f'trap : INT; {reader}; echo rc=$? > {stty}.rc; stty -a > {stty}; sleep 30')}", tmp_path
    )
    try:
        _wait_for(log, lambda lines: len(lines) > 0, timeout_s=30.0)
        yield p, log, stty
    finally:
        p.close()


def test_keys_typed_into_a_real_terminal_become_teleop_commands(pane):
    p, log, stty = pane
    start = len(_lines(log))
    p.keys("w")
    lines = _wait_for(log, lambda ls: any(line["twist"][0] == 1.0 for line in ls[start:]))
    first = next(line for line in lines[start:] if line["twist"][0] == 1.0)
    assert first["engaged"] and "take_over" in first["events"] and first["twist"][1:] == [0.0] * 5
    # no key repeats after a single press: motion ends after key_hold_s (0.6 s) and control goes back
    lines = _wait_for(log, lambda ls: ls[-1]["twist"][0] == 0.0 and not ls[-1]["engaged"], timeout_s=3.0)
    moving = [line for line in lines[start:] if line["twist"][0] == 1.0]
    assert 0.4 <= moving[-1]["t"] - moving[0]["t"] <= 0.75, "one press should drive for about key_hold_s"
    assert any("release" in line["events"] for line in lines[start:])

    mark = len(lines)
    p.keys("t", "c", "Up")  # take over (toggle), close the gripper, arrow up = +x
    lines = _wait_for(log, lambda ls: any(line["twist"][0] == 1.0 and line["gripper"] == 1.0 for line in ls[mark:]))
    mark = len(lines)
    lines = _wait_for(log, lambda ls: len(ls) > mark + 40)  # > 0.8 s later: the arrow's motion is over...
    assert lines[-1]["engaged"] and lines[-1]["twist"] == [0.0] * 6  # ...but the toggle keeps the person in charge
    mark = len(lines)
    p.keys("y", "x")  # success, then re-record
    lines = _wait_for(log, lambda ls: {"success", "rerecord"} <= {e for line in ls[mark:] for e in line["events"]})
    fired = [e for line in lines[mark:] for e in line["events"]]
    assert fired.count("success") == 1 and fired.count("rerecord") == 1
    assert "keys:" in p.screen()  # the key help is on the screen

    p.keys("C-c")
    end = time.monotonic() + 10
    while not stty.exists() and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.2)
    assert Path(f"{stty}.rc").read_text().strip() == "rc=0"
    settings = stty.read_text().split()
    assert "icanon" in settings and "echo" in settings, "the reader left the terminal in cbreak mode"
