"""Refused episodes: counted per reason, logged at most once per period per reason, and settled for good.

A payload that cannot be read (garbage, another kind, a failed checksum, metadata without an actor id) is only
counted: nobody can be answered, and an actor whose episode was damaged in transit resends it anyway (it is not
acknowledged). An episode that decodes but is bad in itself (NaN, actions out of range, another layout, zero
length, ...) would be refused again on every resend, and the actor resends what is not acknowledged -- forever,
with every later episode of that actor a gap. So such an episode is *settled*: one line in
`<out>/refused_episodes.jsonl` (actor, index, reason, message; flushed to disk before the ack), and the acks
count it like a stored one, which tells the actor to stop resending it. The ledger is rebuilt at start from the
store's source columns plus these lines. The episode itself stays in the actor's own store.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REFUSED_LOG = "refused_episodes.jsonl"


class RateLimitedLog:
    """At most one line per key every `period_s`; the next line says how many were not logged in between."""

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s, self.clock = period_s, clock
        self._last_s: dict[str, float] = {}
        self._quiet: Counter[str] = Counter()

    def line(self, key: str, message: str) -> str | None:
        """The line to log now, or None (counted as not logged)."""
        now = self.clock()
        if now - self._last_s.get(key, -float("inf")) < self.period_s:
            self._quiet[key] += 1
            return None
        self._last_s[key] = now
        quiet = self._quiet.pop(key, 0)
        return message + (
            f" (+{quiet} more {key} refusals not logged in the last {self.period_s:g} s)" if quiet else ""
        )


def settle(run_dir: Path, actor_id: str, index: int, reason: str, message: str) -> None:
    """Record a refused episode for good (durable when this returns)."""
    path = Path(run_dir) / REFUSED_LOG
    torn = path.is_file() and path.stat().st_size and path.read_bytes()[-1:] != b"\n"  # a crash mid-line
    with open(path, "a") as f:
        f.write(
            ("\n" if torn else "")
            + json.dumps({"actor_id": actor_id, "index": index, "reason": reason, "message": message})
            + "\n"
        )
        f.flush()
        os.fsync(f.fileno())


def read_settled(run_dir: Path) -> list[dict]:
    """Every complete line of refused_episodes.jsonl (a line torn by a crash is skipped: that episode is resent)."""
    path = Path(run_dir) / REFUSED_LOG
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
            out.append({"actor_id": str(row["actor_id"]), "index": int(row["index"]), "reason": str(row["reason"])})
        except (ValueError, KeyError, TypeError):
            continue
    return out
