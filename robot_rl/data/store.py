"""The episode store: one zarr v3 directory per dataset, appended one episode at a time.

Layout (diffusion-policy style)::

    <path>/zarr.json            root group; its attributes are the dataset metadata (`store.meta`)
    <path>/data/<key>           one chunked array per step key, all episodes concatenated, time on axis 0
    <path>/meta/episode_ends    int64 (n_episodes,): cumulative end row (exclusive) of each episode

Row convention: row t of an episode holds the observation at step t, the action taken at step t and
the reward / terminated / truncated that followed that action (plus `success` and the other step keys
of `robot_rl.keys`). The observation after the last step is not stored: learners repeat the last
observation as its next observation, which is exact when the episode terminated (no bootstrap).

Metadata: the caller's dict (task, control_rate_hz, cameras with intrinsics, action/obs layout, ...)
plus `schema_version`, `created_utc` and `robot_rl_version`, all in the root group's attributes.

Storage (see `robot_rl.data.layout`): images in chunks of a few frames, other keys in chunks of a
few thousand rows, Blosc-zstd plus a CRC32C per chunk, so a corrupted chunk is reported when read
(`StoreError`), never returned as silent garbage. The arrays are made, opened, written and read by
`robot_rl.data.store_arrays`.

Crash safety: `add_episode` writes every `data/` array first, then the new entry of `meta/episode_ends`,
which is the commit point, with a sync to disk after each: a returned episode is durable, and the
commit never reaches the disk before the data it points to. zarr's LocalStore writes each file
atomically (temporary file + rename), so an interrupted write leaves each file either old or new.
Rows beyond `episode_ends[-1]` (an episode in flight when the writer died) are ignored on open and
overwritten by the next append. A writer killed between growing `episode_ends` and writing its entry
leaves one trailing slot holding the fill value -1: that slot is read as "not committed" and reused
by the next append. Stores made by this version keep that pending slot always, written explicitly (at
creation and after each commit), so every slot has a chunk file on disk: a missing or unreadable chunk of
`meta/episode_ends` is a lost index, never an empty store (see "Lost index" below).

One writer per store (`robot_rl.data.store_lock`): opening for appending (`create`, `open(mode="a")`,
`open_or_create`) takes an exclusive OS lock on `<path>/writer.lock` for the store's lifetime (until
`close()`), and a second writer, in another process or this one, is refused at once with a message naming
the holder. Readers never take it.

Lost index: a store whose data/ arrays hold rows but whose `meta/episode_ends` is missing, unreadable or has
lost a chunk refuses to open (for reading and writing) with a StoreError naming the problem and the repair
command, `robot-rl data repair DIR` (`robot_rl.data.store_verify.repair_index`), which rebuilds the index
from the terminated/truncated flags. `verify()` also checks that every episode's rows agree with the index
(`robot_rl.data.store_verify.check_rows`).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

import robot_rl
from robot_rl.data.layout import is_image
from robot_rl.data.spec import KeySpec, check_fits, episode_length, spec_of
from robot_rl.data.store_arrays import make_arrays, open_arrays, read_rows, sync_to_disk, write_rows
from robot_rl.data.store_index import (  # noqa: F401 - StoreError is part of this module's API
    UNCOMMITTED,
    StoreError,
    create_ends,
    lock_writer,
    read_index,
)
from robot_rl.data.store_lock import LOCK_FILES, WriterLock

SCHEMA_VERSION = 1
RESERVED_META = ("schema_version", "created_utc", "robot_rl_version")  # set by the store, not the caller
COMPATIBLE_META = ("task", "obs_mode", "control_rate_hz", "action_layout", "obs_layout", "action_scale")  # to append


def _jsonable(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of `meta` (numpy arrays/scalars become lists/numbers, tuples lists)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
        raise TypeError(f"dataset metadata must be JSON-serialisable; got {type(obj).__name__}: {obj!r}")

    return json.loads(json.dumps(dict(meta), default=default))


class EpisodeStore:
    """Episodes of robot experience in a zarr v3 directory (see the module docstring for the layout).

    Make one with `create`, `open` or `open_or_create`; the constructor is internal.
    """

    def __init__(self, path: Path, root: zarr.Group, mode: str, lock: WriterLock | None = None) -> None:
        self.path = path
        self.mode = mode
        self._root = root
        self._lock = lock
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the writer lock (if held); the store stays readable. Also done when it is garbage-collected."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.mode == "a":
            self.mode = "r"

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- named constructors -----------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, meta: Mapping[str, Any], exist_ok: bool = False) -> EpisodeStore:
        """A new, empty store at `path` (which must not exist or be an empty directory).

        With exist_ok=True an existing store is opened for appending instead (its metadata must be
        compatible with `meta`, see `open_or_create`). A directory that is not a store is never touched.
        """
        path = Path(path)
        if path.exists():
            if (path / "zarr.json").is_file():
                if exist_ok:
                    return cls.open_or_create(path, meta)
                raise StoreError(
                    f"{path} already holds a zarr store; open it with EpisodeStore.open(path, mode='a') "
                    "or pass exist_ok=True to append to it"
                )
            if not path.is_dir() or any(p.name not in LOCK_FILES for p in path.iterdir()):
                raise StoreError(
                    f"refusing to create an episode store at {path}: it exists and is not an empty directory "
                    "(choose a new path)"
                )
        path.mkdir(parents=True, exist_ok=True)
        lock = lock_writer(path)
        try:
            return cls._create_locked(path, meta, lock, exist_ok)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _create_locked(cls, path: Path, meta: Mapping[str, Any], lock: WriterLock, exist_ok: bool) -> EpisodeStore:
        if (path / "zarr.json").is_file():  # another writer made it while we waited for the lock
            if not exist_ok:
                raise StoreError(f"{path} was created by another writer just now; open it with mode='a' to append")
            lock.release()
            return cls.open_or_create(path, meta)
        user_meta = {k: v for k, v in _jsonable(meta).items() if k not in RESERVED_META}
        attrs = {
            **user_meta,
            "schema_version": SCHEMA_VERSION,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "robot_rl_version": robot_rl.__version__,
        }
        # Built beside the store and moved in with the root zarr.json last, so a writer killed while creating leaves
        # no half store (a root without its index would read as a store that lost its index).
        staging = path.parent / f".{path.name}.creating"
        shutil.rmtree(staging, ignore_errors=True)  # left by a creation killed before; we hold the store's lock
        staged = zarr.create_group(store=LocalStore(staging), zarr_format=3, attributes=attrs)
        staged.create_group("data")
        create_ends(staged.create_group("meta"), [])
        sync_to_disk()
        for name in ("data", "meta", "zarr.json"):
            os.replace(staging / name, path / name)
        shutil.rmtree(staging, ignore_errors=True)
        sync_to_disk()
        root = zarr.open_group(store=LocalStore(path), mode="r+")
        return cls(path, root, mode="a", lock=lock)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", verify: bool = False) -> EpisodeStore:
        """An existing store: mode "r" reads, mode "a" also appends. Raises StoreError if it is not one.

        Opening checks the metadata and `meta/episode_ends`; a damaged data chunk is reported when it
        is read, or at once with verify=True (which reads every chunk).
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' (read-only) or 'a' (append); got {mode!r}")
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no episode store at {path}: the path does not exist")
        if not (path / "zarr.json").is_file():
            raise StoreError(
                f"{path} is not an episode store: it has no zarr.json (expected a directory made by EpisodeStore.create)"
            )
        lock = lock_writer(path) if mode == "a" else None
        try:
            root = zarr.open_group(store=LocalStore(path, read_only=mode == "r"), mode="r" if mode == "r" else "r+")
        except Exception as e:  # zarr raises several types for unreadable metadata
            if lock is not None:
                lock.release()
            raise StoreError(f"{path} is not a readable zarr v3 group: {type(e).__name__}: {e}") from e
        store = cls(path, root, mode, lock)
        if verify:
            try:
                store.verify()
            except StoreError:
                store.close()  # a refused open holds no lock
                raise
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, meta: Mapping[str, Any]) -> EpisodeStore:
        """Open the store at `path` for appending, or create it. An existing store must agree with
        `meta` on every field of COMPATIBLE_META that both define (task, obs_mode, control rate, layouts)."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            return cls.create(path, meta)
        store = cls.open(path, mode="a")
        given = _jsonable(meta)
        for field in COMPATIBLE_META:
            if field in given and field in store.meta and given[field] != store.meta[field]:
                store.close()
                raise StoreError(
                    f"{path}: cannot append, the store's {field!r} is {store.meta[field]!r} but the new episodes' is "
                    f"{given[field]!r} (use a new store for a different {field})"
                )
        return store

    # --- reading --------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    @property
    def keys(self) -> tuple[str, ...]:
        """Step keys of every episode (sorted); empty until the first episode is added."""
        return tuple(self._spec)

    @property
    def spec(self) -> dict[str, KeySpec]:
        return dict(self._spec)

    @property
    def n_episodes(self) -> int:
        return len(self._ends)

    @property
    def n_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, mode={self.mode!r}, episodes={self.n_episodes}, steps={self.n_steps})"

    def episode_slice(self, i: int) -> slice:
        """Rows of episode i (negative i counts from the end)."""
        n = self.n_episodes
        if not -n <= i < n:
            raise IndexError(f"episode {i} out of range: {self.path} holds {n} episodes (valid: {-n}..{n - 1})")
        i %= n
        return slice(int(self._ends[i - 1]) if i > 0 else 0, int(self._ends[i]))

    def get_episode(self, i: int) -> dict[str, np.ndarray]:
        rows = self.episode_slice(i)
        return self._read_many(list(self._spec), rows.start, rows.stop)

    def iter_episodes(self, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Episodes start, start + 1, ...; small keys are read once in bulk, images per episode."""
        if not 0 <= start <= self.n_episodes:
            raise IndexError(f"start must be in 0..{self.n_episodes} for {self.path}; got {start}")
        first_row = int(self._ends[start - 1]) if start > 0 else 0
        images = [key for key, spec in self._spec.items() if is_image(key, spec)]
        small = self._read_many([key for key in self._spec if key not in images], first_row, self.n_steps)
        for i in range(start, self.n_episodes):
            rows = self.episode_slice(i)
            episode = {key: v[rows.start - first_row : rows.stop - first_row].copy() for key, v in small.items()}
            episode |= self._read_many(images, rows.start, rows.stop)
            yield {key: episode[key] for key in self._spec}

    def get_key(self, key: str) -> np.ndarray:
        """All committed rows of one key, (n_steps, ...), for bulk loading into replay."""
        if key not in self._spec:
            raise KeyError(f"{self.path} has no key {key!r}; its keys are {list(self._spec)}")
        return self._read(key, 0, self.n_steps)

    def get_rows(self, start: int, stop: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) of `names` (default: every key), read concurrently; for readers of many episodes at
        once, which decode each image chunk once where `iter_episodes` decodes a chunk shared by episodes again."""
        if not 0 <= start <= stop <= self.n_steps:
            raise IndexError(f"rows {start}:{stop} are outside 0:{self.n_steps} of {self.path}")
        return self._read_many(list(self._spec if names is None else names), start, stop)

    def nbytes_stored(self, key: str) -> int:
        """Bytes on disk of one key's array (compressed chunks + metadata)."""
        return sum(f.stat().st_size for f in (self.path / "data" / key).rglob("*") if f.is_file())

    def verify(self) -> None:
        """Read every committed chunk, then check that every episode's rows agree with the index
        (`store_verify.check_rows`); raise StoreError naming the first damaged chunk or disagreeing episode."""
        from robot_rl.data.store_verify import check_rows

        for key, arr in self._arrays.items():
            step = arr.chunks[0]
            for start in range(0, self.n_steps, step):
                self._read(key, start, min(start + step, self.n_steps))
        problems = check_rows(self)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"{self.path}: {problems[0]}{more}")

    def refresh(self) -> None:
        """Re-read the committed state (to see episodes another process appended)."""
        self._root = zarr.open_group(store=self._root.store, mode="r" if self.mode == "r" else "r+")
        self._load()

    # --- writing --------------------------------------------------------------------------------
    def add_episode(self, steps: Mapping[str, np.ndarray]) -> int:
        """Append one episode (every value (T, ...) with the same T); durable when this returns.

        Returns the episode's index. The first episode fixes the store's key set, dtypes and per-step
        shapes; later ones must match them exactly.
        """
        return self.add_episodes([steps])[0]

    def add_episodes(self, episodes: Sequence[Mapping[str, np.ndarray]]) -> list[int]:
        """Append several episodes with one write per key and one commit: all durable when this returns, none
        if the writer dies before. For bulk imports: each `add_episode` of a short episode rewrites the partly
        filled image chunk (20 pixel episodes: ~1.6 s one by one, ~0.3 s at once). Returns their indices."""
        if self.mode != "a" or self._lock is None or not self._lock.held:
            raise StoreError(f"{self.path} is open read-only (or closed); open it with mode='a' to append")
        if not episodes:
            return []
        lengths = [episode_length(steps) for steps in episodes]
        spec = self._spec or spec_of(episodes[0])
        for steps in episodes:
            try:
                check_fits(spec, steps, where=f"{self.path}: add_episode")
            except ValueError as e:
                raise StoreError(str(e)) from None
        if self.n_episodes == 0:
            self._arrays, self._spec = make_arrays(self.path, self._root["data"], spec), spec
        rows = {k: np.ascontiguousarray(np.concatenate([steps[k] for steps in episodes])) for k in spec}
        start = self.n_steps
        stops = start + np.cumsum(lengths, dtype=np.int64)
        write_rows(self._arrays, rows, start, int(stops[-1]))
        sync_to_disk()  # the data is on disk before the commit point can be
        # commit point: the new entries of meta/episode_ends
        first, n = self.n_episodes, len(episodes)
        if self._ends_array.shape[0] < first + n:  # a store from before the pending slot, or a grow that died
            self._ends_array.resize((first + n,))
        self._ends_array[first : first + n] = stops
        sync_to_disk()
        self._ends = np.append(self._ends, stops)
        self._ends_array.resize((first + n + 1,))  # the next pending slot, written so that its chunk file exists
        self._ends_array[first + n] = UNCOMMITTED
        return list(range(first, first + n))

    # --- internals ------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read and check the committed state; raise StoreError naming what is wrong."""
        attrs = dict(self._root.attrs)
        if "schema_version" not in attrs:
            raise StoreError(
                f"{self.path} is a zarr group but not an episode store: it has no 'schema_version' attribute"
            )
        if attrs["schema_version"] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema_version {attrs['schema_version']!r} is not supported "
                f"(this robot_rl {robot_rl.__version__} reads schema_version {SCHEMA_VERSION})"
            )
        self._meta = attrs
        self._ends_array, self._ends = read_index(self.path, self._root)
        ends = self._ends
        if not (self.path / "data" / "zarr.json").is_file():
            raise StoreError(f"{self.path}: missing the data/ group")
        self._arrays: dict[str, zarr.Array] = {}
        self._spec: dict[str, KeySpec] = {}
        if len(ends) == 0:
            return  # arrays left by a first append that never committed are replaced on the next append
        self._arrays, self._spec = open_arrays(self.path, self._root, self.mode, int(ends[-1]))
        if not self._arrays:
            raise StoreError(f"{self.path}: meta/episode_ends lists {len(ends)} episodes but data/ holds no arrays")

    def _read(self, key: str, start: int, stop: int) -> np.ndarray:
        return self._read_many([key], start, stop)[key]

    def _read_many(self, names: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows [start, stop) of several keys, read concurrently; StoreError naming a damaged key."""
        return read_rows(self.path, self._arrays, names, start, stop)
