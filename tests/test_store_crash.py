"""A writer process killed by SIGKILL mid-episode loses only that episode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from test_store import _assert_same_episode, _make_episode

from robot_rl import keys
from robot_rl.data.store import EpisodeStore

SHORT, LONG = 10, 600  # steps of the committed episodes / of the episode being written when killed

WRITER = """
import sys
sys.path.insert(0, {tests_dir!r})
from test_store import META, _make_episode
from robot_rl.data.store import EpisodeStore
store = EpisodeStore.open_or_create({path!r}, META)
for i in range(store.n_episodes, 100):
    episode = _make_episode(i, {long} if i == {killed} else {short}, image_hw=(96, 96))
    print(f"writing {{i}}", flush=True)
    store.add_episode(episode)
    print(f"committed {{i}}", flush=True)
"""


def _rows_on_disk(path: Path, key: str) -> int:
    """Length of data/<key> as its metadata says, or 0 before the array exists."""
    try:
        return json.loads((path / "data" / key / "zarr.json").read_text())["shape"][0]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def _kill_while_writing(path: Path, killed: int) -> None:
    """Run a writer, and SIGKILL it once it has started writing the data of episode `killed`."""
    code = WRITER.format(tests_dir=str(Path(__file__).parent), path=str(path), killed=killed, long=LONG, short=SHORT)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.strip() == f"writing {killed}":
                break
        else:
            pytest.fail(f"writer exited before episode {killed}: {child.stderr.read()}")
        deadline = time.monotonic() + 30.0
        while _rows_on_disk(path, keys.ACTION) <= killed * SHORT:  # not yet growing the first array
            assert time.monotonic() < deadline, "writer never started writing the episode"
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("killed", [0, 3])
def test_killed_writer_loses_only_the_open_episode(tmp_path, killed):
    path = tmp_path / "crash.zarr"
    _kill_while_writing(path, killed)

    store = EpisodeStore.open(path)
    assert store.n_episodes == killed and store.n_steps == killed * SHORT
    assert zarr.open_array(path / "data" / keys.ACTION, mode="r").shape[0] > store.n_steps  # died mid-episode
    for i in range(killed):
        _assert_same_episode(store.get_episode(i), _make_episode(i, SHORT, image_hw=(96, 96)))

    appender = EpisodeStore.open(path, mode="a")
    replacement = _make_episode(1000, 7, image_hw=(96, 96))
    assert appender.add_episode(replacement) == killed
    reopened = EpisodeStore.open(path, verify=True)
    assert reopened.episode_lengths.tolist() == [SHORT] * killed + [7]
    _assert_same_episode(reopened.get_episode(-1), replacement)
    for i in range(killed):
        _assert_same_episode(reopened.get_episode(i), _make_episode(i, SHORT, image_hw=(96, 96)))
    for key in reopened.keys:  # the dead episode's rows are gone from every array
        assert zarr.open_array(path / "data" / key, mode="r").shape[0] == reopened.n_steps
    assert np.all(reopened.get_key(keys.REWARD)[-7:] == replacement[keys.REWARD])
