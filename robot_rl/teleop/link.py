"""Both ends of the `teleop/command` stream, without ROS: event counters out, heartbeat and events in.

A teleop node publishes its command at a fixed rate (the heartbeat). Events travel as running counts
(one per kind in TELEOP_EVENTS, since the node started) rather than one-shot flags, so a dropped or
overwritten message never loses a success or a re-record: the receiver fires an event whenever its
count went up. The receiver takes the first message's counts as its baseline (a restarted actor does
not replay old events).

    counts = EventCounts()                          # sender
    counts.add(cmd.events); wire = counts.snapshot()

    link = TeleopLink(timeout_s=0.5)                # receiver (the actor)
    link.receive(twist, gripper, engaged, connected, counts, t_s=arrival)
    cmd = link.read(now_s)                          # None before any message; connected False after timeout
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from robot_rl.interfaces import TELEOP_EVENTS, TeleopCommand


class EventCounts:
    """Running counts of each event kind (sender side)."""

    def __init__(self) -> None:
        self.counts = {e: 0 for e in TELEOP_EVENTS}

    def add(self, events: Iterable[str]) -> None:
        for e in events:
            if e not in self.counts:
                raise ValueError(f"unknown teleop event {e!r}; events are {TELEOP_EVENTS}")
            self.counts[e] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


class TeleopLink:
    """The latest command received, its age, and the events counted since the last read (receiver side)."""

    def __init__(self, timeout_s: float = 0.5):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        self.timeout_s = timeout_s
        self._last: TeleopCommand | None = None
        self._last_s: float | None = None
        self._counts: dict[str, int] | None = None
        self._pending: list[str] = []

    def receive(
        self,
        twist: np.ndarray,
        gripper: float | None,
        engaged: bool,
        connected: bool,
        counts: Mapping[str, int],
        t_s: float,
        t_capture: float | None = None,
    ) -> None:
        """One message, arrived at `t_s` on the receiver's clock."""
        if self._counts is not None:
            for e in TELEOP_EVENTS:
                if counts.get(e, 0) > self._counts.get(e, 0) and e not in self._pending:
                    self._pending.append(e)
        self._counts = dict(counts)
        self._last = TeleopCommand(
            np.asarray(twist, dtype=np.float64).reshape(6),
            gripper,
            bool(engaged),
            t_capture=t_s if t_capture is None else t_capture,
            connected=bool(connected),
        )
        self._last_s = t_s

    def read(self, now_s: float) -> TeleopCommand | None:
        """The command in force now, with the events since the last read; None if nothing was ever received.

        Older than `timeout_s` (the sender died or the network dropped): disconnected, no motion, not engaged.
        """
        if self._last is None:
            return None
        events, self._pending = tuple(self._pending), []
        last = self._last
        if now_s - self._last_s > self.timeout_s:
            return TeleopCommand(np.zeros(6), None, False, events, t_capture=last.t_capture, connected=False)
        return TeleopCommand(last.twist.copy(), last.gripper, last.engaged, events, last.t_capture, last.connected)
