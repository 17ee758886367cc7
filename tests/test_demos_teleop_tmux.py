"""`robot-rl demos record --teleop keyboard` driven through a real terminal (tmux), into a real zarr store.

The person (this test, typing with `tmux send-keys`) takes over, drives, re-records the first try, then
drives again and presses success: exactly one episode is stored, marked as driven, ending in success.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tmuxpane import Pane  # noqa: E402

from robot_rl import keys
from robot_rl.data.store import EpisodeStore

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt install tmux)")


def _wait_screen(pane: Pane, text: str, timeout_s: float = 60.0) -> str:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        screen = pane.screen()
        if text in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared; screen:\n{pane.screen()}")


def test_a_person_records_a_demo_with_the_keyboard_re_recording_the_first_try(tmp_path: Path):
    out, rc = tmp_path / "demos", tmp_path / "rc"
    cli = (
        f"MUJOCO_GL=egl {shlex.quote(str(Path(sys.executable).parent / 'robot-rl'))} demos record --task pick_cube "
        f"--teleop keyboard --episodes 1 --obs state --out {shlex.quote(str(out))}"
    )
    pane = Pane(f"sh -c {shlex.quote(f'{cli}; echo rc=$? > {rc}; sleep 60')}", tmp_path)
    try:
        _wait_screen(pane, "episode 1/1 step")
        pane.keys("t")  # take over
        for _ in range(5):
            pane.keys("f")  # down
            time.sleep(0.1)
        time.sleep(1.0)  # let go (a terminal key drives for key_hold_s after its last repeat)
        pane.keys("x")  # re-record: this try is dropped
        _wait_screen(pane, "episode discarded")
        _wait_screen(pane, "DRIVING")  # the take-over toggle is still on: the person drives the new try
        for _ in range(8):
            pane.keys("w")  # +x
            time.sleep(0.1)
        time.sleep(0.5)
        pane.keys("y")  # success
        end = time.monotonic() + 30
        while not rc.exists() and time.monotonic() < end:
            time.sleep(0.1)
        screen = pane.screen()
        assert rc.exists() and rc.read_text().strip() == "rc=0", screen
        assert "recorded 1 episodes of pick_cube by keyboard" in screen and "1 re-recorded" in screen
    finally:
        pane.close()
    store = EpisodeStore.open(out, verify=True)
    assert store.n_episodes == 1 and store.meta["source"] == "teleop:keyboard"
    episode = store.get_episode(0)
    action = episode[keys.ACTION]
    assert episode[keys.IS_INTERVENTION].all()  # the person was in charge throughout
    assert np.isclose(action[:, 0], 0.5).sum() >= 5 and np.all(action[:, 1:3] == 0.0)  # +x at --speed 0.5, nothing else
    assert np.all(episode[keys.POLICY_ACTION][:, :3] == 0.0)  # the "policy" only ever held still
    assert episode[keys.TERMINATED][-1] and episode[keys.REWARD][-1] == 1.0 and episode[keys.SUCCESS][-1]
    x = episode[keys.STATE][:, 0]
    assert x[-1] > x[0] + 0.02  # the tool moved along +x
