"""The episode store's writer lock: one writing process per store, readers never wait.

A writer holds `flock(LOCK_EX | LOCK_NB)` on `<store>/writer.lock` for as long as its `EpisodeStore`
is open for appending, and writes `<store>/writer.json` naming itself (pid, host, command line,
start time) so that a refused writer can say who holds the store. The OS lock, not the JSON file,
decides: the kernel drops a flock when its process dies (even by SIGKILL), so a stale `writer.json`
left by a killed writer never blocks the next one; it is simply overwritten.

flock locks belong to an open file description, so a second `EpisodeStore.open(..., mode="a")` of
the same store inside the same process is refused too (two appenders in one process would also
overwrite each other's rows): close the first one, or share it. The lock file is opened with
O_CLOEXEC so programs started by a writer do not inherit it; a child made by a bare `os.fork()`
does inherit it and keeps the store locked until it exits. Network file systems may not honour
flock: keep stores on local disks.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
import weakref
from pathlib import Path
from typing import Any

LOCK_FILE = "writer.lock"  # flock'ed by the writer for its lifetime; never deleted
HOLDER_FILE = "writer.json"  # who holds the lock: for the refusal message only
LOCK_FILES = (LOCK_FILE, HOLDER_FILE)


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    text = " ".join(argv)
    return text if len(text) <= 120 else text[:117] + "..."


def _release(fd: int, holder: Path, pid: int) -> None:
    """Drop the lock (idempotent: the fd is closed once); remove the holder file if it names us."""
    try:
        if read_holder(holder.parent).get("pid") == pid:
            holder.unlink(missing_ok=True)
    finally:
        try:
            os.close(fd)  # closing the only descriptor releases the flock
        except OSError:
            pass


class WriterLock:
    """The exclusive writer lock of one store directory, held until `release()` or garbage collection."""

    def __init__(self, fd: int, store_dir: Path) -> None:
        self.store_dir = store_dir
        self._finalizer = weakref.finalize(self, _release, fd, store_dir / HOLDER_FILE, os.getpid())

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()


def try_lock(store_dir: Path) -> WriterLock | None:
    """Take the writer lock of `store_dir` (an existing directory) at once, or None if another holds it."""
    fd = os.open(store_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    now = datetime.datetime.now().astimezone()
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command_line(),
        "started": now.isoformat(timespec="seconds"),
    }
    tmp = store_dir / f".{HOLDER_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(holder) + "\n")
    os.replace(tmp, store_dir / HOLDER_FILE)
    return WriterLock(fd, store_dir)


def read_holder(store_dir: Path) -> dict[str, Any]:
    """The holder file's contents, or {} when it is missing or unreadable."""
    try:
        holder = json.loads((store_dir / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def busy_message(store_dir: Path) -> str:
    """One line for a refused writer: who holds `store_dir` and what to do."""
    holder = read_holder(store_dir)
    pid = holder.get("pid")
    if pid == os.getpid():
        return (
            f"store {store_dir} is already open for writing in this process (pid {pid}); "
            "append through that EpisodeStore or close() it first"
        )
    if pid is None:
        return (
            f"store {store_dir} is being written by another process (its {HOLDER_FILE} is missing); "
            "wait for it to finish or stop it"
        )
    started = str(holder.get("started", "?"))
    since = started[11:19] if len(started) >= 19 else started
    host = holder.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return (
        f"store {store_dir} is being written by pid {pid}{where} ({holder.get('command', '?')}, since {since}); "
        f"wait for it to finish or stop it (kill {pid}), then retry"
    )
