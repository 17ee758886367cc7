"""Section timers for the main loop: `with timers("env"): ...`, then per-section seconds and shares."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class SectionTimers:
    """Accumulated wall seconds per named section of a loop."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, section: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[section] += time.perf_counter() - t0

    def metrics(self) -> dict[str, float]:
        """{"time/<section>_s": seconds, "time/<section>_share": fraction of all timed seconds}."""
        total = sum(self.seconds.values()) or 1.0
        out = {}
        for name, s in sorted(self.seconds.items()):
            out[f"time/{name}_s"] = s
            out[f"time/{name}_share"] = s / total
        return out

    def summary(self) -> str:
        """One line: "env 41% (12.3 s) · update 50% (15.0 s) · ..."."""
        total = sum(self.seconds.values()) or 1.0
        parts = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        return " · ".join(f"{name} {100 * s / total:.0f}% ({s:.1f} s)" for name, s in parts)
