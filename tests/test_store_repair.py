"""A store that lost its index refuses to open and names `robot-rl data repair`, which rebuilds it from the
terminated/truncated flags; `data info --verify` catches rows that disagree with the index; `data info | head`
ends cleanly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from test_store import META, _assert_same_episode, _make_episode, _store_with

from robot_rl import keys
from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore, StoreError

ENDS_CHUNK_0 = Path("meta") / "episode_ends" / "c" / "0"


def test_a_one_episode_store_that_lost_its_index_is_refused_then_repaired_byte_for_byte(tmp_path, capsys):
    path, episodes = _store_with(tmp_path, [9])
    (path / ENDS_CHUNK_0).unlink()  # the case: it used to read as an empty store, then get overwritten
    for open_it in (
        lambda: EpisodeStore.open(path, mode="a"),
        lambda: EpisodeStore.open_or_create(path, META),
        lambda: EpisodeStore.open(path),
    ):
        with pytest.raises(
            StoreError,
            match=rf"index is lost: chunk 0 of meta/episode_ends .* is missing; .*"
            rf"run `robot-rl data repair {path}`",
        ):
            open_it()
    assert zarr.open_array(path / "data" / keys.ACTION, mode="r").shape[0] == 9  # nothing was overwritten

    assert main(["data", "repair", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"rebuilt {path}/meta/episode_ends from the terminated/truncated flags: 1 episodes, 9 steps" in out
    assert "the old index is kept as meta/episode_ends.lost-" in out
    store = EpisodeStore.open(path, mode="a", verify=True)
    assert store.episode_lengths.tolist() == [9]
    _assert_same_episode(store.get_episode(0), episodes[0])
    extra = _make_episode(50, 4)
    assert store.add_episode(extra) == 1  # writable again, appended after the restored episode
    store.close()
    assert main(["data", "repair", str(path)]) == 0  # an intact index is left alone
    assert "its index is intact (2 episodes), nothing to repair" in capsys.readouterr().out
    _assert_same_episode(EpisodeStore.open(path).get_episode(1), extra)


def _append_unflagged_rows(path: Path, n_rows: int) -> None:
    """Rows of an episode in flight when its writer died: written to every array, no episode end flag."""
    for key in EpisodeStore.open(path).keys:
        arr = zarr.open_array(path / "data" / key, mode="r+")
        arr.resize((arr.shape[0] + n_rows, *arr.shape[1:]))


def test_repair_drops_the_rows_of_an_unfinished_last_episode(tmp_path, capsys):
    path, episodes = _store_with(tmp_path, [5, 7, 6])
    _append_unflagged_rows(path, 4)
    (path / ENDS_CHUNK_0).unlink()
    assert main(["data", "repair", str(path)]) == 0
    assert "3 episodes, 18 steps; dropped 4 trailing rows of an incomplete episode" in capsys.readouterr().out
    store = EpisodeStore.open(path, verify=True)
    assert store.episode_lengths.tolist() == [5, 7, 6]
    for i, episode in enumerate(episodes):
        _assert_same_episode(store.get_episode(i), episode)


def test_repair_refuses_a_store_without_episode_end_flags(tmp_path, capsys):
    path = tmp_path / "flagless.zarr"
    with EpisodeStore.create(path, META) as store:
        store.add_episode({keys.ACTION: np.ones((6, 2), np.float32)})
    (path / ENDS_CHUNK_0).unlink()
    assert main(["data", "repair", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"robot-rl: error: cannot repair {path}: it has no terminated or truncated key")
        and err.count("\n") == 1
    )
    assert (path / "meta" / "episode_ends" / "zarr.json").is_file()  # refused: nothing was moved


@pytest.mark.parametrize("tamper", ["end_flag_inside", "clock_backwards", "index_shifted"])
def test_verify_catches_rows_that_disagree_with_the_index(tmp_path, capsys, tamper):
    path, _ = _store_with(tmp_path, [5, 7, 6])
    assert main(["data", "info", "--verify", str(path)]) == 0
    capsys.readouterr()
    if tamper == "end_flag_inside":  # what a second writer's episode written over rows 5..9 leaves
        zarr.open_array(path / "data" / keys.TERMINATED, mode="r+")[8] = True
        expected = r"episode 1 \(rows 5:12\) has terminated/truncated at row 8, inside it"
    elif tamper == "clock_backwards":
        zarr.open_array(path / "data" / keys.T_CAPTURE, mode="r+")[9] = 0.0
        expected = r"episode 1 \(rows 5:12\): t_capture runs backwards at row 9"
    else:  # the index says 6 rows where the data holds 5
        zarr.open_array(path / "meta" / "episode_ends", mode="r+")[0] = 6
        expected = r"episode 0 \(rows 0:6\) does not end with terminated/truncated"
    assert main(["data", "info", "--verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(expected, err), err
    assert main(["data", "info", str(path)]) == 0  # without --verify the summary still prints


def test_info_piped_into_head_ends_without_a_traceback(tmp_path):
    """`data info S | head -1` fails only when the reader leaves before the write: `head -c 0` always does."""
    path, _ = _store_with(tmp_path, [5, 7])
    robot_rl_cmd = Path(sys.executable).parent / "robot-rl"
    shell = f"'{robot_rl_cmd}' data info '{path}' | head -c 0; echo \"exit=${{PIPESTATUS[0]}}\""
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    assert done.stderr == "", done.stderr  # no BrokenPipeError traceback, no "Exception ignored" line
    assert done.stdout == "exit=0\n"


def test_a_store_that_lost_a_whole_array_is_refused_not_read_without_that_key(tmp_path, capsys):
    """Stores record their key set when the first episode is written; a deleted array dir used to vanish from
    every episode (data info reported a store without rewards as fine)."""
    path = tmp_path / "s"
    store = EpisodeStore.create(path, META)
    store.add_episode(_make_episode(0, 6))
    store.close()
    assert EpisodeStore.open(path).keys == tuple(sorted(_make_episode(0, 6)))
    import shutil

    shutil.rmtree(path / "data" / keys.REWARD)
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match="data/reward is missing"):
            EpisodeStore.open(path, mode=mode)
    assert main(["data", "info", str(path)]) == 1
    assert "data/reward is missing" in capsys.readouterr().err


def test_repair_of_what_is_not_a_store_is_one_line(tmp_path, capsys):
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "zarr.json").write_text("garbage{")
    for path, word in ((tmp_path / "missing", "no episode store"), (tmp_path / "garbage", "zarr.json is unreadable")):
        assert main(["data", "repair", str(path)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("robot-rl: error: ") and word in err[0], err
