"""No message can end a node: every subscription callback runs behind a guard that refuses what it cannot take.

A refused message (malformed, non-finite, wrong length, garbled payload -- anything its callback raised on) is
counted per topic, for the node's status, and logged with at most one line per topic every `log_period_s`
(the next line says how many were not logged in between). The callback's exception never reaches the
executor, so the node keeps spinning and its control tick keeps running.

    self.refusals = Refusals(self)
    self.create_subscription(String, "acks", self.refusals.guarded("acks", self._on_acks), qos)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from robot_rl.learner.refusals import RateLimitedLog

LOG_PERIOD_S = 5.0  # at most one refusal line per topic this often


class Refusals:
    """Per-topic counts of refused messages and their rate-limited log lines, for one node."""

    def __init__(self, node, log_period_s: float = LOG_PERIOD_S) -> None:
        self._node = node
        self._log = RateLimitedLog(log_period_s)
        self.counts: Counter[str] = Counter()

    def refuse(self, topic: str, reason: str) -> None:
        """Count one refused message on `topic` and log `reason` unless this topic logged one recently."""
        self.counts[topic] += 1
        line = self._log.line(topic, f"refused a message on {topic}: {reason[:300]}")
        if line is not None:
            self._node.get_logger().warning(line)

    def guarded(self, topic: str, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """`callback` behind the guard: whatever it raises refuses the message instead of ending the node."""

        def run(msg: Any) -> None:
            try:
                callback(msg)
            except Exception as err:  # noqa: BLE001 -- any message-borne failure is a refusal, never a crash
                self.refuse(topic, f"{type(err).__name__}: {err}")

        return run

    def as_dict(self) -> dict[str, int]:
        """{topic: refused count}, for a status message."""
        return dict(sorted(self.counts.items()))
