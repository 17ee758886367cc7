"""The actor's side of the delivery guarantee (`robot_rl.ros.protocol`), without ROS.

- `Outbox` reads the learner's acks ({actor_id: episodes stored}) and says which of this actor's
  stored episodes to (re)send. Flow control: only the `window_episodes` episodes past the ack count are ever
  in flight (`fresh`: those never sent, at once; `due`: resends, lowest first, at most `max_burst` per check);
  the next goes out when the learner acks one, so N actors cannot bury a slow learner (4 robots with cameras
  had every unacked episode, 10 MB each, on the wire at once). An episode is resent `resend_interval_s` after
  its first send, then after twice that, and so on up to `max_resend_interval_s`: a learner that is alive but
  behind (a pixel episode takes it tens of seconds to ingest on a small CPU) is not buried under copies of what
  it is still reading (4 robots with cameras sent 2 GB of resends that way). Nor is one that is making
  progress: while it stores anyone's episodes (the acks' total rose within `max_resend_interval_s`) it is
  working through a queue that holds ours (DDS delivers reliably to a reader it stays matched with; every copy
  costs it a reassembly and a decode), so nothing is resent unless it stored nothing of this actor's for twice
  that (a copy of ours it lost while storing others'). In a simulated 4-actor fleet into a learner slower than
  the robots with 10 % of copies lost, the backed-off resends alone sent 687 copies of 48 episodes and queued up
  to 420; with a window of 2 and this hold, 68 and 6 (`tests/test_delivery_window.py`). When the learner comes
  back after being silent (a partition, a restart), every unacked episode in the window is sent again at once.
  It also tracks the learner's liveness: the learner republishes acks every second, so no acks for `timeout_s`
  means it is gone.
- `VersionLedger` remembers which policy version acted in each stored episode (a JSON-lines file
  next to the store's arrays), so an episode resent after an actor restart still carries it.

Times are monotonic seconds: the learner runs on wall time whatever clock the robot uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Outbox:
    def __init__(
        self,
        actor_id: str,
        timeout_s: float,
        resend_interval_s: float = 2.0,
        max_burst: int = 10,
        max_resend_interval_s: float = 30.0,
        window_episodes: int = 4,
    ):
        if (
            timeout_s <= 0
            or resend_interval_s <= 0
            or max_burst < 1
            or max_resend_interval_s < resend_interval_s
            or window_episodes < 1
        ):
            raise ValueError(
                f"need timeout_s > 0, resend_interval_s > 0, max_burst >= 1, max_resend_interval_s >= "
                f"resend_interval_s, window_episodes >= 1; got {timeout_s}, {resend_interval_s}, {max_burst}, "
                f"{max_resend_interval_s}, {window_episodes}"
            )
        self.actor_id = actor_id
        self.timeout_s = timeout_s
        self.resend_interval_s = resend_interval_s
        self.max_resend_interval_s = max_resend_interval_s
        self.max_burst = max_burst
        self.window_episodes = window_episodes  # episodes past the ack that may be in flight
        self.acked: int | None = None  # episodes of this actor the learner holds (None: never heard)
        self._last_ack_s: float | None = None
        self._last_sent_s: dict[int, float] = {}
        self._sends: dict[int, int] = {}  # times each unacked episode was sent
        self._last_check_s = -float("inf")
        self._acks_total: int | None = None  # episodes the learner holds from all actors, by its last acks
        self._progress_s = -float("inf")  # when that total last rose
        self._own_progress_s = -float("inf")  # when this actor's count last rose (or the learner was first heard)

    def on_acks(self, acks: dict[str, int], now_s: float) -> None:
        """An acks message (also the learner's heartbeat); an actor it does not list has 0 stored."""
        if self._last_ack_s is not None and now_s - self._last_ack_s > self.timeout_s:
            self._sends.clear()  # back after a silence: what it has not acked may be lost, resend it promptly
            self._last_sent_s.clear()
        acked = int(acks.get(self.actor_id, 0))
        if self.acked is None or acked > self.acked:
            self._own_progress_s = now_s
        self.acked = acked
        total = sum(acks.values())
        if self._acks_total is not None and total > self._acks_total:
            self._progress_s = now_s
        self._acks_total = total
        self._last_ack_s = now_s
        for index in [i for i in self._last_sent_s if i < self.acked]:
            del self._last_sent_s[index]
            self._sends.pop(index, None)

    def resend_after_s(self, index: int) -> float:
        """Seconds after its last send that episode `index` is due again: doubling per send, capped."""
        sends = self._sends.get(index, 0)
        return min(self.resend_interval_s * 2.0 ** max(sends - 1, 0), self.max_resend_interval_s)

    def learner_alive(self, now_s: float) -> bool:
        return self._last_ack_s is not None and now_s - self._last_ack_s <= self.timeout_s

    def silent_for(self, now_s: float) -> float:
        """Seconds since the last acks message (inf if none ever came)."""
        return float("inf") if self._last_ack_s is None else now_s - self._last_ack_s

    def sent(self, index: int, now_s: float) -> None:
        self._last_sent_s[index] = now_s
        self._sends[index] = self._sends.get(index, 0) + 1

    def unacked(self, n_stored: int) -> int:
        """Stored episodes the learner is not known to hold."""
        return n_stored - (self.acked or 0)

    def window_end(self, n_stored: int) -> int:
        """One past the last index that may be in flight: the ack count plus the window, at most n_stored."""
        return min(n_stored, (self.acked or 0) + self.window_episodes)

    def fresh(self, n_stored: int) -> list[int]:
        """Stored episodes in the window never sent (since the learner's last silence): to send at once, whether
        or not the learner is heard (a first send costs nothing if nobody listens)."""
        return [i for i in range(self.acked or 0, self.window_end(n_stored)) if i not in self._last_sent_s]

    def due(self, n_stored: int, now_s: float) -> list[int]:
        """Indices in the window to (re)send now (their backed-off interval since the last send has passed);
        checked at most once per resend_interval_s and only while the learner is alive."""
        if now_s - self._last_check_s < self.resend_interval_s or not self.learner_alive(now_s):
            return []
        self._last_check_s = now_s
        out = []
        for index in range(self.acked or 0, self.window_end(n_stored)):
            waited_s, after_s = now_s - self._last_sent_s.get(index, -float("inf")), self.resend_after_s(index)
            idle_s = now_s - self._progress_s  # since the learner last stored anything from any actor
            own_idle_s = min(now_s - self._own_progress_s, waited_s)  # since it stored one of ours, or this went
            busy = idle_s < self.max_resend_interval_s and own_idle_s < 2 * self.max_resend_interval_s
            if waited_s >= after_s and not busy:
                out.append(index)
            if len(out) == self.max_burst:
                break
        return out


class VersionLedger:
    """index -> policy version of every episode in an actor's store, kept in `<store>/actor_episodes.jsonl`."""

    FILE = "actor_episodes.jsonl"

    def __init__(self, store_path: str | os.PathLike):
        self.path = Path(store_path) / self.FILE
        self._versions: dict[int, int] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                    self._versions[int(row["index"])] = int(row["policy_version"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a crash: that episode reads as version -1

    def add(self, index: int, policy_version: int) -> None:
        self._versions[index] = policy_version
        with open(self.path, "a") as f:
            f.write(json.dumps({"index": index, "policy_version": policy_version}) + "\n")

    def version(self, index: int) -> int:
        """The policy version that acted in episode `index` (-1: unknown or no policy)."""
        return self._versions.get(index, -1)
