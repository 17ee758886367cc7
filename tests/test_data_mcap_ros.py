"""The actor's MCAP recording over real DDS: the sim actor records (`record_mcap:=true`), `data import --format
rosbag2` reads the file back, and the store it makes equals the one the actor wrote itself, step for step.

One sim node (state topics, 3x real time) and one actor (random warm-up actions, 8-step episodes, sim time) in a
private namespace; run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosprocs import start_process, stop_process

from robot_rl.data import mcap_format
from robot_rl.data.store import EpisodeStore, StoreError

pytestmark = pytest.mark.ros

NS = f"/mcap_rec_{os.getpid()}"
BIN = Path(sys.executable).parent
STEPS = 8


def _episodes(store: Path) -> int:
    try:
        return EpisodeStore.open(store, mode="r").n_episodes
    except (StoreError, FileNotFoundError, OSError):
        return 0


def test_the_sim_actor_records_an_mcap_that_imports_into_the_store_it_wrote_step_for_step(tmp_path):
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim_log, actor_log, store = tmp_path / "sim.log", tmp_path / "actor.log", tmp_path / "actor_store"
    sim = start_process(
        [str(BIN / "robot-rl-sim-node"), *ros, "-p", "real_time_factor:=3.0", "-p", "camera_rate_hz:=0.0"], sim_log
    )
    params = ["use_sim_time:=true", f"max_episode_steps:={STEPS}", f"store:={store}", "warmup:=random"]
    actor = start_process(
        [str(BIN / "robot-rl-actor-node"), *ros, "-r", "__node:=actor", *sum((["-p", p] for p in params), []),
         "-p", "record_mcap:=true"],
        actor_log,
    )  # fmt: skip
    try:
        end = time.monotonic() + 40.0
        while _episodes(store) < 3 and time.monotonic() < end and actor.poll() is None:
            time.sleep(0.5)
    finally:
        actor_rc, sim_rc = stop_process(actor), stop_process(sim)
    assert actor_rc == 0 and sim_rc == 0, actor_log.read_text()[-3000:] + sim_log.read_text()[-2000:]
    own = EpisodeStore.open(store, mode="r")
    assert own.n_episodes >= 3, actor_log.read_text()[-3000:]

    bags = sorted(tmp_path.glob("actor_store_*.mcap"))
    assert len(bags) == 1, list(tmp_path.iterdir())
    bag = mcap_format.read_summary(bags[0])
    assert bag.profile == "ros2" and mcap_format.ACTOR_METADATA in bag.metadata
    types = {t.removeprefix(NS + "/"): c.schema for t, c in bag.channels.items()}
    assert (
        types["joint_states"] == "sensor_msgs/msg/JointState"
        and types["actor/step"] == "std_msgs/msg/Float32MultiArray"
    )
    assert {c.encoding for c in bag.channels.values()} == {"ros2msg"}
    info = json.loads(
        subprocess.run(
            [str(BIN / "robot-rl"), "data", "info", str(bags[0]), "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert info["episodes"] >= own.n_episodes and info["topics"][f"{NS}/ee_command"]["messages"] > 0

    out = tmp_path / "imported"
    run = subprocess.run(
        [str(BIN / "robot-rl"), "data", "import", str(bags[0]), "--format", "rosbag2", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "actor steps" in run.stdout
    imported = EpisodeStore.open(out, mode="r")
    # the actor may have stored one more episode after the recording's last marker was queued: compare its prefix
    n = min(own.n_episodes, imported.n_episodes)
    assert n >= 3 and abs(own.n_episodes - imported.n_episodes) <= 1
    assert list(imported.episode_ends[:n]) == list(own.episode_ends[:n])
    assert set(imported.spec) == set(own.spec)
    rows = int(own.episode_ends[n - 1])
    for key in own.spec:
        a, b = own.get_key(key)[:rows], imported.get_key(key)[:rows]
        assert a.dtype == b.dtype and a.shape == b.shape, key
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(b, a, err_msg=key)
    for field in ("task", "obs_mode", "control_rate_hz", "obs_layout", "action_layout", "max_episode_steps"):
        assert imported.meta[field] == own.meta[field], field
    assert not np.all(own.get_key("action")[:rows] == 0)  # random actions moved the arm: a real comparison
