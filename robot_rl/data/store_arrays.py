"""The data/ arrays of an episode store: making them, opening them, writing and reading rows, syncing to disk.

Split from `robot_rl.data.store` (whose docstring holds the layout and the commit protocol). These are the
row-level operations `EpisodeStore` builds on; each error is a StoreError naming the store, the array and
what is wrong with it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import zarr
from zarr.core.sync import sync as zarr_sync

from robot_rl import keys
from robot_rl.data.layout import chunk_rows, compressors
from robot_rl.data.spec import KeySpec
from robot_rl.data.store_index import ARRAY_CONFIG, StoreError


def sync_to_disk() -> None:
    """Flush every written file and directory entry to disk.

    One `os.sync()` (Linux waits for it to complete) instead of fsync per file: measured here on ext4,
    a 100-step episode with two 128x128 cameras touches ~166 files and directories, whose fsyncs took
    ~600 ms, while `os.sync()` took 2-3 ms.
    """
    os.sync()


def make_arrays(path: Path, data: zarr.Group, spec: dict[str, KeySpec]) -> dict[str, zarr.Array]:
    """Create the data/ arrays (length 0) of the store at `path` for its first episode, replacing any an
    uncommitted append left, and record the key set in data/'s attributes (so that a lost array is noticed)."""
    for key in spec:
        if not key or "/" in key or key.startswith("."):
            raise StoreError(
                f"{path}: invalid step key {key!r} (use names like {keys.ACTION!r}, {keys.image_key('front')!r})"
            )
    for leftover in (path / "data").iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
    data.attrs.put({"keys": sorted(spec)})
    return {
        key: data.create_array(
            key,
            shape=(0, *ks.step_shape),
            chunks=(chunk_rows(key, ks), *ks.step_shape),
            dtype=ks.dtype,
            compressors=compressors(key, ks),
            fill_value=np.zeros((), ks.dtype).item(),
            config=ARRAY_CONFIG,
        )
        for key, ks in spec.items()
    }


def data_keys(path: Path, root: zarr.Group) -> list[str]:
    """The step keys: those data/ recorded when its first episode was written (a lost array directory is then
    refused, not silently dropped from every episode), or, for stores written before that, its array dirs."""
    found = sorted(d.name for d in (path / "data").iterdir() if d.is_dir())
    recorded = dict(root["data"].attrs).get("keys")
    if recorded is None:
        return found
    missing = sorted(set(recorded) - set(found))
    if missing:
        raise StoreError(
            f"{path}: data/{missing[0]} is missing (the store was written with keys {recorded}); "
            "restore the store from a backup"
        )
    return sorted(recorded)


def open_arrays(
    path: Path,
    root: zarr.Group,
    mode: str,
    n_steps: int,
) -> tuple[dict[str, zarr.Array], dict[str, KeySpec]]:
    """The data/ arrays of a store whose index commits `n_steps` rows, and their specs; StoreError when an
    array is missing, has unreadable metadata or is shorter than the index says."""
    arrays: dict[str, zarr.Array] = {}
    spec: dict[str, KeySpec] = {}
    for key in data_keys(path, root):
        try:
            arr = zarr.open_array(store=root.store, path=f"data/{key}", mode="r" if mode == "r" else "r+")
        except Exception as e:  # a damaged or missing zarr.json
            raise StoreError(f"{path}: data/{key} has unreadable metadata: {type(e).__name__}: {e}") from e
        if arr.shape[0] < n_steps:
            raise StoreError(
                f"{path}: episode_ends[-1] = {n_steps} is beyond the length of data/{key} ({arr.shape[0]} rows)"
            )
        arrays[key] = arr.with_config(ARRAY_CONFIG)
        spec[key] = KeySpec(np.dtype(arr.dtype), tuple(arr.shape[1:]))
    return arrays, spec


def write_rows(arrays: Mapping[str, zarr.Array], steps: Mapping[str, np.ndarray], start: int, stop: int) -> None:
    """Write rows [start, stop) of every array concurrently (zarr's cost per call is mostly waiting).

    Each array's length becomes `stop`, which also drops rows an uncommitted append left behind.
    """

    async def write(arr: zarr.AsyncArray, values: np.ndarray) -> None:
        await arr.resize((stop, *arr.shape[1:]))
        await arr.setitem(slice(start, stop), values)

    async def write_all() -> None:
        await asyncio.gather(*(write(arr.async_array, steps[key]) for key, arr in arrays.items()))

    zarr_sync(write_all())


def _chunk_files(arr: zarr.Array, array_dir: Path, start: int, stop: int) -> list[Path]:
    """The chunk files that hold rows [start, stop) of `arr`."""
    step = arr.chunks[0]
    zeros = (0,) * (arr.ndim - 1)
    return [
        array_dir / arr.metadata.encode_chunk_key((i, *zeros)) for i in range(start // step, (stop - 1) // step + 1)
    ]


def read_rows(
    path: Path,
    arrays: Mapping[str, zarr.Array],
    names: list[str],
    start: int,
    stop: int,
) -> dict[str, np.ndarray]:
    """Rows [start, stop) of several keys of the store at `path`, read concurrently; StoreError naming a damaged key."""
    for key in names if stop > start else []:
        chunk_files = _chunk_files(arrays[key], path / "data" / key, start, stop)
        missing = [f for f in chunk_files if not f.is_file()]
        if missing:
            raise StoreError(f"{path}: data/{key} is damaged: chunk file {missing[0]} is missing")

    async def read(key: str) -> np.ndarray:
        try:
            return np.asarray(await arrays[key].async_array.getitem(slice(start, stop)))
        except Exception as e:  # checksum mismatch, truncated or undecodable chunk
            raise StoreError(
                f"{path}: data/{key} rows {start}:{stop} are unreadable (corrupt chunk): {type(e).__name__}: {e}"
            ) from e

    async def read_all() -> list[np.ndarray]:
        return await asyncio.gather(*(read(key) for key in names))

    return dict(zip(names, zarr_sync(read_all()), strict=True))
