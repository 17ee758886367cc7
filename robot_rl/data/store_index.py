"""The index of an episode store, `meta/episode_ends`: reading it, checking it, making it.

Split from `robot_rl.data.store` (whose docstring holds the layout and the commit protocol). Every
slot of `meta/episode_ends` has a chunk file on disk (the pending slot -1 is written, not left to
the fill value), so a missing chunk is told apart from an empty store: a store whose data/ arrays
hold rows but whose index is missing, unreadable or incomplete has lost its index, and every error
about it names the repair command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from robot_rl.data.store_lock import WriterLock, busy_message, try_lock

UNCOMMITTED = -1  # fill value of meta/episode_ends: a slot grown by an append that never committed
ARRAY_CONFIG = {"write_empty_chunks": True}  # every chunk has a file, so a missing file means damage
ENDS_CHUNK = 4096  # entries per chunk of meta/episode_ends


def repair_hint(path: Path) -> str:
    return f"run `robot-rl data repair {path}` to rebuild it from the terminated/truncated flags"


class StoreError(Exception):
    """An episode store is missing, corrupt, or does not match what was asked of it."""


def lock_writer(path: Path) -> WriterLock:
    """The writer lock of the store directory `path`, or StoreError naming who holds it."""
    lock = try_lock(path)
    if lock is None:
        raise StoreError(busy_message(path))
    return lock


def data_rows(path: Path) -> int:
    """The most rows any data/ array of the store at `path` holds, read from the arrays' metadata (0 if none)."""
    rows = 0
    for meta in (path / "data").glob("*/zarr.json"):
        try:
            rows = max(rows, int(json.loads(meta.read_text())["shape"][0]))
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
    return rows


def create_ends(meta: zarr.Group, ends: list[int], name: str = "episode_ends") -> zarr.Array:
    """meta/<name> holding `ends` and the pending slot (-1), every chunk written to disk."""
    values = np.array([*ends, UNCOMMITTED], dtype=np.int64)
    arr = meta.create_array(
        name,
        shape=values.shape,
        chunks=(ENDS_CHUNK,),
        dtype="int64",
        fill_value=UNCOMMITTED,
        compressors=[Crc32cCodec()],
        config=ARRAY_CONFIG,
    )
    arr[:] = values
    return arr


def _lost_index(path: Path, problem: str) -> StoreError:
    return StoreError(f"{path}: the episode index is lost: {problem}; its data/ arrays hold rows; {repair_hint(path)}")


def read_index(path: Path, root: zarr.Group) -> tuple[zarr.Array, np.ndarray]:
    """meta/episode_ends and its committed entries; StoreError (with the repair command where data/ holds
    rows) when it is missing, unreadable, has lost a chunk, or is not increasing."""
    rows = data_rows(path)
    damaged = (
        (lambda problem: _lost_index(path, problem)) if rows else (lambda problem: StoreError(f"{path}: {problem}"))
    )
    try:
        arr = root["meta/episode_ends"]
    except KeyError:
        raise damaged("meta/episode_ends is missing") from None
    except Exception as e:  # a damaged zarr.json
        raise damaged(f"meta/episode_ends has unreadable metadata ({type(e).__name__}: {e})") from e
    if not isinstance(arr, zarr.Array) or arr.ndim != 1 or arr.dtype != np.int64:
        raise damaged("meta/episode_ends is not a 1-D int64 array")
    n_slots, step = arr.shape[0], arr.chunks[0]
    for chunk in range((n_slots + step - 1) // step):
        if (path / "meta" / "episode_ends" / arr.metadata.encode_chunk_key((chunk,))).is_file():
            continue
        pending_only = chunk * step == n_slots - 1  # a chunk grown for the pending slot, never written
        if not pending_only or (n_slots == 1 and rows):  # (one slot, rows: a lost chunk or an old store's first append)
            raise damaged(f"chunk {chunk} of meta/episode_ends (entries {chunk * step}..) is missing")
    try:
        ends = np.asarray(arr.with_config(ARRAY_CONFIG)[:], dtype=np.int64)
    except Exception as e:
        raise damaged(f"meta/episode_ends is unreadable (corrupt chunk: {type(e).__name__}: {e})") from e
    if len(ends) and ends[-1] == UNCOMMITTED:
        ends = ends[:-1]  # the pending slot, or an append that died between growing episode_ends and committing
    if len(ends) and (ends[0] <= 0 or np.any(np.diff(ends) <= 0)):
        bad = 0 if ends[0] <= 0 else int(np.argmax(np.diff(ends) <= 0)) + 1
        raise damaged(
            f"meta/episode_ends must be strictly increasing positive row counts; "
            f"entry {bad} is {ends[bad]} (previous: {ends[bad - 1] if bad else 0})"
        )
    return arr.with_config(ARRAY_CONFIG), ends
