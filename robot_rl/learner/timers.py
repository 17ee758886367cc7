"""Section timers for the main loop: `with timers("env"): ...`, then per-section seconds and shares.

Each section counts wall seconds and the CPU seconds of the thread that ran it (`time.thread_time`: torch's
intra-op pool threads are not in it, so with `threads` > 1 it undercounts a torch-heavy section). Both matter on a
shared machine: wall seconds far above CPU seconds mean the process waited for a core, not that the work was slow.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class SectionTimers:
    """Accumulated wall seconds and thread CPU seconds per named section of a loop."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, section: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.seconds[section] += time.perf_counter() - t0
            self.cpu_seconds[section] += time.thread_time() - c0

    def metrics(self) -> dict[str, float]:
        """{"time/<section>_s": seconds, "time/<section>_cpu_s": CPU seconds, "time/<section>_share": fraction of
        all timed seconds}."""
        total = sum(self.seconds.values()) or 1.0
        out = {}
        for name, s in sorted(self.seconds.items()):
            out[f"time/{name}_s"] = s
            out[f"time/{name}_cpu_s"] = self.cpu_seconds[name]
            out[f"time/{name}_share"] = s / total
        return out

    def summary(self) -> str:
        """One line: "env 41% (12.3 s, 11.9 s CPU) · update 50% (15.0 s, 14.2 s CPU) · ..."."""
        total = sum(self.seconds.values()) or 1.0
        parts = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        return " · ".join(
            f"{name} {100 * s / total:.0f}% ({s:.1f} s, {self.cpu_seconds[name]:.1f} s CPU)" for name, s in parts
        )
