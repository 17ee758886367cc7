"""Wake windows: a periodic thread that is ordinary between its periods holds SCHED_FIFO from `lead` before each
period is due until the period starts, so the kernel wakes it on time however loaded the cores are.

A control thread (the actor's tick, the arm node's period) holds SCHED_FIFO only while it runs a period
(`robot_rl.acting.realtime.TickPriority`): between periods the same thread serves every subscription callback, and
at FIFO it would take each message alone, ahead of every ordinary thread (65 % of a core with the sim at 3x real
time). But it must wake for the next period as an ordinary thread, and on 2 cores loaded by learning runs the fair
scheduler let it wait behind them: the tick started late (`robot-rl bench ros` control jitter p99 7-12 ms under
load with the tick itself on FIFO). Here the thread takes FIFO a little before the period is due -- the window is
`lead` either side of the predicted start -- and the period's own `with tick_priority:` drops it after the period.
Callbacks inside the window run at FIFO, ~`lead` per period.

The predicted start comes from the periods already seen: the median interval of the last few, and the earliest
phase they fit (a late start is late against the grid, never early), so one late tick does not open the next
window late; it stays open until `lead` after the latest phase they fit, so starts that came late for a while (a
grid that moved: in `robot-rl bench ros` the sim's clock leaves a reset a few ms off its earlier wall-time phase)
are covered too until the history holds only the new phase. Sampled during late ticks with the window closing
`lead` after the earliest phase (session 24), the control thread sat at its ordinary priority, runnable, behind the
learning runs; `robot-rl bench ros` under two learning runs, alternated: control jitter p99 2.4, 4.3, 3.4, 1.8,
3.7 ms with that window, 1.3, 2.2, 1.7, 2.9, 1.0 ms with this one (docs/benchmarks.md). A window that passes
without a period (sim clock paused, the learner stalled) is followed by the next one on the same grid.

A small FIFO thread (`WakeThread`) does the raising, so the control thread's loop stays as it was: an rclpy
executor's `spin_once` must keep one timeout (a new one restarts its generator, which resumes a pending coroutine
first -- an async `reset` awaiting the home move -- and never reaches the timers). No ROS here.
"""

from __future__ import annotations

import ctypes
import math
import statistics
import threading
import time
from collections import deque

from robot_rl.acting.realtime import raise_thread_priority

HISTORY = 9  # period starts the prediction uses
THREAD_NAME = b"rrl-wake"  # the wake thread's kernel name (/proc/PID/task/TID/comm)


def _name_thread(name: bytes) -> None:
    """The calling thread's kernel name (Linux prctl PR_SET_NAME), so tools and tests can tell it apart."""
    try:
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass


class WakeWindow:
    """When a thread should hold SCHED_FIFO ahead of its next period. `started` at each period's start (wall seconds,
    time.monotonic); `wait_s` says how long it may still sleep as an ordinary thread, `left_s` how long the window
    it is in stays open. `lead_s` 0 turns it off (`wait_s` is infinite)."""

    def __init__(self, period_s: float, lead_s: float) -> None:
        if not (period_s > 0 and lead_s >= 0):
            raise ValueError(f"need a positive period and a lead >= 0, got {period_s} s and {lead_s} s")
        self.nominal_s = period_s
        self.lead_s = min(lead_s, period_s / 4)  # at most a quarter period: a fast loop stays mostly ordinary
        self._starts: deque[float] = deque(maxlen=HISTORY)
        self.n_started = 0  # periods seen

    def started(self, now_s: float) -> None:
        self._starts.append(now_s)
        self.n_started += 1

    def _snapshot(self) -> tuple[float, ...]:
        # one copy per query: the control thread appends while the wake thread reads (iterating the deque itself
        # raised "deque mutated during iteration" and ended the wake thread)
        return tuple(self._starts)

    def period_s(self, starts: tuple[float, ...] | None = None) -> float:
        """Median wall interval between recent starts (a sim-time tick's wall period follows the sim's speed)."""
        starts = self._snapshot() if starts is None else starts
        gaps = [b - a for a, b in zip(starts, starts[1:]) if 0 < b - a <= 4 * self.nominal_s]
        return statistics.median(gaps) if gaps else self.nominal_s

    def _bounds(self, now_s: float) -> tuple[float, float]:
        """(earliest, latest) start of the next period that the recent starts' phases predict, for the first window
        not closed by `now_s`. The phases differ by the ticks' jitter and by moves of the whole grid: until the
        moved starts fill the history both phases are covered, the latest at most a half period (less the leads)
        after the earliest."""
        starts = self._snapshot()
        period, last = self.period_s(starts), starts[-1]
        fits = [t + math.ceil((last - t) / period + 0.5) * period for t in starts]  # each start's next one
        due = min(fits)  # the earliest fit phase: a late start is late against the grid, never early
        latest = min(max(fits), due + max(0.0, period / 2 - 2 * self.lead_s))
        if now_s > latest + self.lead_s:  # that window passed without a period: the next ones on the same grid
            shift = math.ceil((now_s - latest - self.lead_s) / period) * period
            due, latest = due + shift, latest + shift
        return due, latest

    def due_s(self, now_s: float) -> float:
        """The earliest start of the next period whose window has not closed by `now_s`."""
        return self._bounds(now_s)[0]

    def active(self) -> bool:
        """On, a period seen, and periods long against the lead (unpaced back-to-back steps get no windows)."""
        return self.lead_s > 0 and bool(self._starts) and self.period_s() >= 3 * self.lead_s

    def wait_s(self, now_s: float) -> float:
        """Seconds until the next window opens; 0 inside one; infinite when not `active`."""
        if not self.active():
            return math.inf
        return max(0.0, self.due_s(now_s) - self.lead_s - now_s)

    def left_s(self, now_s: float) -> float:
        """Seconds until the window the thread is in closes (0 outside one)."""
        if not self.active():
            return 0.0
        return max(0.0, self._bounds(now_s)[1] + self.lead_s - now_s)


class WakeThread:
    """A small thread on SCHED_FIFO (the control thread's priority) that raises the control thread when a window
    opens and drops it when the window closes without a period (`TickPriority.hold_ahead` / `release_idle`). The
    control thread keeps its own loop (an executor's `spin_once` with its usual timeout); only its scheduling
    changes while it waits. Runs only when the control thread got SCHED_FIFO and the lead is above 0."""

    def __init__(self, window: WakeWindow, priority, what: str = "wake thread") -> None:
        self.window, self.priority = window, priority
        self._stop = threading.Event()
        self.line = f"{what}: off (wake lead 0 or no SCHED_FIFO)"
        self._thread: threading.Thread | None = None
        if window.lead_s > 0 and priority.on:
            self._thread = threading.Thread(target=self._run, name="rrl-wake", daemon=True)
            self._thread.start()
            self.line = (
                f"{what}: the control thread takes SCHED_FIFO {priority.priority} {window.lead_s * 1e3:g} ms before "
                "each period is due (robot_rl.acting.wake)"
            )

    def _run(self) -> None:
        _name_thread(THREAD_NAME)
        raise_thread_priority(self.priority.priority, what="wake thread")
        window = self.window
        while not self._stop.is_set():
            now = time.monotonic()
            wait = window.wait_s(now)
            if wait > 0:
                self._stop.wait(min(wait, window.nominal_s))
                continue
            seen = window.n_started
            self.priority.hold_ahead()
            self._stop.wait(window.left_s(now))
            self.priority.release_idle(lambda seen=seen: window.n_started == seen)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
