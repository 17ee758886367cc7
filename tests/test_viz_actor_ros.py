"""The actor node's `viz:=rerun` as a real process next to the sim node: its .rrd beside the store holds every
stored step at the store's row, with the executed action the store holds, and episode boundaries.
Run inside a private network namespace."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from test_viz import _rrd_rows, _rrd_series, _rrd_texts

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.viz.actor import viz_file

pytestmark = pytest.mark.ros
pytest.importorskip("rerun")

NS = f"/viz_actor_{os.getpid()}"
STEPS = 12  # max_episode_steps
BIN = Path(sys.executable).parent


def _stored_episodes(store: Path) -> int:
    try:
        return EpisodeStore.open(store).n_episodes
    except Exception:  # noqa: BLE001 (not created yet)
        return 0


def test_the_actor_view_holds_every_stored_step_at_its_row(tmp_path):
    store = tmp_path / "actor_store"
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim_log, actor_log = tmp_path / "sim.log", tmp_path / "actor.log"
    sim = _start(
        [str(BIN / "robot-rl-sim-node"), *ros, "-p", "real_time_factor:=3.0", "-p", "camera_rate_hz:=0.0"], sim_log
    )
    params = {
        "use_sim_time": "true",
        "max_episode_steps": str(STEPS),
        "store": str(store),
        "warmup": "random",
        "viz": "rerun",
    }
    args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    actor = _start([str(BIN / "robot-rl-actor-node"), *ros, "-r", "__node:=actor", *args], actor_log)
    try:
        deadline = time.monotonic() + 60.0
        while _stored_episodes(store) < 2 and time.monotonic() < deadline:
            assert actor.poll() is None and sim.poll() is None, actor_log.read_text()[-3000:] + sim_log.read_text()
            time.sleep(0.5)
    finally:
        actor_rc, sim_rc = _stop(actor, actor_log), _stop(sim, sim_log)
    assert actor_rc == 0 and sim_rc == 0, actor_log.read_text()[-3000:]
    stored = EpisodeStore.open(store)
    assert stored.n_episodes >= 2, actor_log.read_text()[-3000:]

    rrd = viz_file(str(store))
    assert rrd == tmp_path / "actor_store-viz.rrd" and rrd.stat().st_size > 0
    rows = _rrd_rows(rrd)
    assert rows["action/dx/executed"] >= stored.n_steps and rows["action/gripper/policy"] >= stored.n_steps
    executed, reward = _rrd_series(rrd, "action/dx/executed"), _rrd_series(rrd, "signals/reward")
    actions = np.concatenate([e[keys.ACTION][:, 0] for e in stored.iter_episodes()])
    rewards = np.concatenate([e[keys.REWARD] for e in stored.iter_episodes()])
    assert [executed[r] for r in range(stored.n_steps)] == pytest.approx(actions.tolist(), abs=1e-6)
    assert [reward[r] for r in range(stored.n_steps)] == pytest.approx(rewards.tolist(), abs=1e-6)
    texts = _rrd_texts(rrd)
    assert texts[0] == "episode 0 starts" and texts[1].startswith("episode 0 ends: "), texts[:4]
    assert texts[2] == "episode 1 starts", texts[:4]
