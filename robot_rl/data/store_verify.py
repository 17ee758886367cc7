"""Do an episode store's rows agree with its index, and rebuilding a lost index (`robot-rl data repair`).

`check_rows` is the second half of `EpisodeStore.verify()` (the first reads every chunk's CRC32C). It
finds episodes whose rows disagree with `meta/episode_ends`, which is what two writers interleaving on
one store (before the writer lock) or rows edited after writing leave behind, in old stores too:

- terminated / truncated are set on the last row of every episode and on no other row;
- every capture clock (`t_capture`, `t_capture_<camera>`, monotonic) never runs backwards inside an episode;
- the learner's per-episode source columns (actor id, actor episode index, policy version) are
  constant inside each episode.

`repair_index` rebuilds a lost `meta/episode_ends` from the terminated / truncated flags: an episode
ends at each row where one is set (every writer marks its last row, see `robot_rl.data.recorder`). It
keeps only rows whose chunks all read back (CRC), drops the rows after the last flagged row (an episode
in flight when its writer died), keeps the old index as `meta/episode_ends.lost-<UTC time>`, and refuses
when the flags cannot say where episodes end or damage lies before the last episode.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from robot_rl import keys
from robot_rl.data.store_index import StoreError, create_ends, lock_writer, read_index
from robot_rl.learner.ledger import SOURCE_KEYS

FLAG_KEYS = (keys.TERMINATED, keys.TRUNCATED)
_MAX_LISTED = 3  # problems listed per check


def _episode_of(ends: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.searchsorted(ends, rows, side="right")


def _span(ends: np.ndarray, i: int) -> str:
    return f"episode {i} (rows {int(ends[i - 1]) if i else 0}:{int(ends[i])})"


def _check_flags(store, ends: np.ndarray) -> list[str]:
    flags = [k for k in FLAG_KEYS if k in store.spec]
    if not flags:
        return []
    done = np.logical_or.reduce([store.get_key(k).astype(bool) for k in flags])
    problems = [
        f"{_span(ends, int(i))} does not end with terminated/truncated: its rows disagree with "
        "meta/episode_ends (two writers at once, or rows changed after writing)"
        for i in np.flatnonzero(~done[ends - 1])[:_MAX_LISTED]
    ]
    inside = done.copy()
    inside[ends - 1] = False
    for row in np.flatnonzero(inside)[:_MAX_LISTED]:
        i = int(_episode_of(ends, np.array([row]))[0])
        problems.append(
            f"{_span(ends, i)} has terminated/truncated at row {int(row)}, inside it: its rows hold "
            "more than one episode (two writers at once, or rows changed after writing)"
        )
    return problems


def _changes_inside(values: np.ndarray, ends: np.ndarray, backwards_only: bool) -> np.ndarray:
    """Rows r (r + 1 in the same episode) where values[r + 1] differs from (or, backwards_only, is below) values[r]."""
    flat = values.reshape(len(values), -1)
    changed = np.any(flat[1:] < flat[:-1] if backwards_only else flat[1:] != flat[:-1], axis=1)
    changed[ends[:-1] - 1] = False  # a new episode may start anywhere
    return np.flatnonzero(changed)


def _check_columns(store, ends: np.ndarray) -> list[str]:
    problems = []
    for key in store.spec:
        clock = key == keys.T_CAPTURE or key.startswith(keys.T_CAPTURE + "_")
        if not clock and key not in SOURCE_KEYS:
            continue
        values = store.get_key(key)
        for row in _changes_inside(values, ends, backwards_only=clock)[:_MAX_LISTED]:
            i = int(_episode_of(ends, np.array([row]))[0])
            what = "runs backwards" if clock else "changes (it is constant within an episode)"
            problems.append(
                f"{_span(ends, i)}: {key} {what} at row {int(row) + 1}: its rows come from more than "
                "one episode (two writers at once, or rows changed after writing)"
            )
    return problems


def check_rows(store) -> list[str]:
    """Every way the committed rows of `store` (an open EpisodeStore) disagree with its index; [] if none."""
    if store.n_episodes == 0:
        return []
    ends = store.episode_ends
    return _check_flags(store, ends) + _check_columns(store, ends)


def _first_damaged_row(path: Path, arrays: dict[str, zarr.Array], stop: int) -> int:
    """The first row below `stop` in a chunk that is missing or fails its CRC in any array (`stop` if none)."""
    first = stop
    for key, arr in arrays.items():
        step, zeros = arr.chunks[0], (0,) * (arr.ndim - 1)
        for start in range(0, min(stop, first), step):
            chunk = path / "data" / key / arr.metadata.encode_chunk_key((start // step, *zeros))
            try:
                if not chunk.is_file():
                    raise FileNotFoundError(chunk)
                arr[start : min(start + step, stop)]
            except Exception:  # missing file, checksum mismatch, undecodable chunk
                first = min(first, start)
                break
    return first


def _ends_after(arrays: dict[str, zarr.Array], flags: list[str], start: int, stop: int) -> bool:
    """Whether an episode ends in rows [start, stop - 1) (so more than an interrupted tail follows `start`);
    True as well when the flags there cannot be read."""
    try:
        done = np.logical_or.reduce([np.asarray(arrays[k][start:stop]).astype(bool) for k in flags])
    except Exception:  # the flags' own chunks are damaged: cannot tell
        return True
    return bool(done[:-1].any())


def _rebuilt_ends(path: Path, root: zarr.Group) -> tuple[np.ndarray, int]:
    """Episode ends from the flags, readable rows only, and the number of rows the data arrays hold."""
    names = sorted(d.name for d in (path / "data").iterdir() if (d / "zarr.json").is_file())
    try:
        arrays = {name: zarr.open_array(store=root.store, path=f"data/{name}", mode="r") for name in names}
    except Exception as e:  # a damaged array zarr.json: its rows cannot be read, so neither can the flags be trusted
        raise StoreError(
            f"cannot repair {path}: an array's metadata is unreadable ({type(e).__name__}: {e}); "
            "restore the store from a backup"
        ) from e
    flags = [k for k in FLAG_KEYS if k in arrays]
    if not flags:
        raise StoreError(
            f"cannot repair {path}: it has no {' or '.join(FLAG_KEYS)} key marking where episodes end "
            f"(its keys: {names}); copy its data elsewhere before writing to this path again"
        )
    n_rows = min(arr.shape[0] for arr in arrays.values())
    first_bad = _first_damaged_row(path, arrays, n_rows)
    done = np.logical_or.reduce([np.asarray(arrays[k][:first_bad]).astype(bool) for k in flags])
    ends = np.flatnonzero(done) + 1
    if first_bad < n_rows and _ends_after(arrays, flags, first_bad, n_rows):
        raise StoreError(
            f"cannot repair {path}: data chunks from row {first_bad} are damaged and episodes after "
            "them would be lost or mixed; restore the store from a backup"
        )
    if not len(ends):
        raise StoreError(
            f"cannot repair {path}: none of its {first_bad} readable rows has terminated/truncated set, "
            "so no episode is known to be complete"
        )
    return ends, n_rows


def repair_index(path: str | Path) -> str:
    """Rebuild the lost `meta/episode_ends` of the store at `path` (see the module docstring); what was done, one line.

    Takes the writer lock. A store whose index reads fine is left untouched.
    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"no episode store at {path}: it has no zarr.json")
    try:  # before taking the lock, which leaves a lock file: what is not a store stays untouched
        attrs = zarr.open_group(store=LocalStore(path, read_only=True), mode="r").attrs
    except Exception as e:  # zarr raises several types for unreadable metadata
        raise StoreError(
            f"cannot repair {path}: its zarr.json is unreadable ({type(e).__name__}: {e}); only the "
            "episode index can be rebuilt, restore the store from a backup"
        ) from e
    if "schema_version" not in attrs:
        raise StoreError(f"cannot repair {path}: it is a zarr group but not an episode store (no 'schema_version')")
    lock = lock_writer(path)
    try:
        root = zarr.open_group(store=LocalStore(path), mode="r+")
        try:
            _, ends = read_index(path, root)
        except StoreError:
            pass
        else:
            return (
                f"{path}: its index is intact ({len(ends)} episodes), nothing to repair; "
                f"`robot-rl data info --verify {path}` checks every row"
            )
        ends, n_rows = _rebuilt_ends(path, root)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        old, backup = path / "meta" / "episode_ends", path / "meta" / f"episode_ends.lost-{stamp}"
        meta = root.require_group("meta")
        if old.exists():
            old.rename(backup)
        create_ends(meta, [int(e) for e in ends])
        os.sync()  # the new index is on disk before the lock is released
    finally:
        lock.release()
    kept = f"; the old index is kept as {backup.relative_to(path)}" if backup.exists() else ""
    dropped = n_rows - int(ends[-1])
    tail = f"; dropped {dropped} trailing rows of an incomplete episode" if dropped else ""
    return (
        f"rebuilt {path}/meta/episode_ends from the terminated/truncated flags: {len(ends)} episodes, "
        f"{int(ends[-1])} steps{tail}{kept}"
    )
