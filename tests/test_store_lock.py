"""One writer per episode store: a second writer (another process or this one) is refused at once, naming
the holder; a killed writer's leftover holder file does not block; readers never wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_store import META, _assert_same_episode, _make_episode

from robot_rl.data.store import EpisodeStore, StoreError
from robot_rl.data.store_lock import HOLDER_FILE

TESTS_DIR = str(Path(__file__).parent)

# Opens the store for appending, says so, then appends one episode per line read from stdin (until EOF).
HOLDER = """
import sys
sys.path.insert(0, {tests_dir!r})
from test_store import META, _make_episode
from robot_rl.data.store import EpisodeStore
store = EpisodeStore.open_or_create({path!r}, META)
print("locked", flush=True)
for i, _ in enumerate(sys.stdin):
    store.add_episode(_make_episode(100 + i, 8))
    print(f"committed {{i}}", flush=True)
"""

# A second writer: times its open for appending and prints the outcome as JSON.
CONTENDER = """
import json, sys, time
sys.path.insert(0, {tests_dir!r})
from test_store import META
from robot_rl.data.store import EpisodeStore, StoreError
t0 = time.monotonic()
try:
    EpisodeStore.open_or_create({path!r}, META).add_episode({{}})
    outcome = "opened"
except StoreError as e:
    outcome = str(e)
print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - t0}}))
"""


def _start_holder(path: Path) -> subprocess.Popen:
    code = HOLDER.format(tests_dir=TESTS_DIR, path=str(path))
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = holder.stdout.readline().strip()
    if line != "locked":
        holder.kill()
        pytest.fail(f"the holder did not start: {line!r} {holder.stderr.read()}")
    return holder


def test_a_second_writer_process_is_refused_at_once_naming_the_first(tmp_path):
    path = tmp_path / "shared.zarr"
    holder = _start_holder(path)
    try:
        holder.stdin.write("go\n")  # the holder commits one episode, and keeps the store open
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed 0"
        code = CONTENDER.format(tests_dir=TESTS_DIR, path=str(path))
        contender = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        result = json.loads(contender.stdout)
        assert f"is being written by pid {holder.pid} (" in result["outcome"], result["outcome"]
        assert "wait for it to finish or stop it" in result["outcome"]
        assert result["seconds"] < 1.0  # refused at once, not after waiting for the lock
        reader = EpisodeStore.open(path)  # readers never take the lock
        assert reader.n_episodes == 1
        for _ in range(2):
            holder.stdin.write("go\n")
        holder.stdin.close()
        assert holder.stdout.read().split() == ["committed", "1", "committed", "2"]
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait(timeout=30)
    store = EpisodeStore.open(path, verify=True)  # every chunk and every episode's rows check out
    assert store.episode_lengths.tolist() == [8, 8, 8]
    for i in range(3):
        _assert_same_episode(store.get_episode(i), _make_episode(100 + i, 8))
    assert not (path / HOLDER_FILE).exists()  # a writer that finished removes its holder file


def test_a_killed_writers_holder_file_does_not_block_the_next_writer(tmp_path):
    path = tmp_path / "orphan.zarr"
    holder = _start_holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert json.loads((path / HOLDER_FILE).read_text())["pid"] == holder.pid  # left behind by the killed writer
    t0 = time.monotonic()
    store = EpisodeStore.open(path, mode="a")
    assert time.monotonic() - t0 < 1.0
    assert json.loads((path / HOLDER_FILE).read_text())["pid"] == os.getpid()
    episode = _make_episode(7, 5)
    assert store.add_episode(episode) == 0
    store.close()
    _assert_same_episode(EpisodeStore.open(path).get_episode(0), episode)


def test_a_second_writer_in_the_same_process_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "same.zarr"
    first = EpisodeStore.create(path, META)
    first.add_episode(_make_episode(0, 4))
    with pytest.raises(StoreError, match=rf"{path} is already open for writing in this process \(pid {os.getpid()}\)"):
        EpisodeStore.open(path, mode="a")
    with pytest.raises(StoreError, match="already open for writing in this process"):
        EpisodeStore.open_or_create(path, META)
    assert EpisodeStore.open(path).n_episodes == 1  # reading is fine meanwhile
    first.close()
    with pytest.raises(StoreError, match="read-only"):
        first.add_episode(_make_episode(1, 4))  # a closed store no longer writes
    with EpisodeStore.open(path, mode="a") as second:
        assert second.add_episode(_make_episode(1, 4)) == 1
    third = EpisodeStore.open(path, mode="a")  # the `with` released it
    del third  # garbage collection releases it too
    assert EpisodeStore.open(path, mode="a").n_episodes == 2
