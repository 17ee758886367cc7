"""Which episode the learner expects next from each actor, and where that knowledge lives on disk.

Protocol (robot_rl.ros.protocol): an actor numbers its episodes 0, 1, 2, ...; the learner stores an
episode only if its index equals the number it already holds from that actor. An index below is a
duplicate (already stored: ignored), an index above is a gap (refused: the actor resends the missing
ones first, in order).

Persistence: every episode the learner stores carries three per-step source columns (constant within an
episode, like LeRobot's per-frame `episode_index`): the actor id as zero-padded UTF-8 bytes, the actor's
episode index, and the policy version that acted. They are written in the same `add_episode` as the
episode's data, so they commit atomically with it: after a crash (kill -9 at any moment) the counts read
back from the store are exactly the episodes it holds -- no side file can disagree with the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

import numpy as np

SOURCE_ACTOR = "source_actor"  # uint8 (ACTOR_ID_BYTES,) per step: the sending actor's id, UTF-8, zero-padded
SOURCE_INDEX = "source_index"  # int64 per step: the actor's episode index (EpisodeMeta.index)
SOURCE_POLICY_VERSION = "source_policy_version"  # int64 per step: learner update step of the weights that acted
SOURCE_KEYS = (SOURCE_ACTOR, SOURCE_INDEX, SOURCE_POLICY_VERSION)
ACTOR_ID_BYTES = 128  # longest actor id (a fully qualified ROS node name) the store can hold


class Verdict(Enum):
    """What to do with an incoming episode, given the per-actor counts."""

    ACCEPT = "accept"  # the next expected episode of this actor
    DUPLICATE = "duplicate"  # already stored (a resend): ignore, re-ack
    GAP = "gap"  # an earlier episode of this actor is missing: refuse, the actor resends in order


def encode_actor_id(actor_id: str) -> np.ndarray:
    """(ACTOR_ID_BYTES,) uint8: the id's UTF-8 bytes, zero-padded. Raises ValueError if empty or too long."""
    raw = actor_id.encode("utf-8")
    if not raw or len(raw) > ACTOR_ID_BYTES or b"\x00" in raw:
        shown = repr(actor_id) if len(actor_id) <= ACTOR_ID_BYTES else f"{actor_id[:40]!r}..."  # a 10 kB id: not logged
        raise ValueError(f"actor id {shown} must be 1..{ACTOR_ID_BYTES} UTF-8 bytes without NUL; got {len(raw)} bytes")
    out = np.zeros(ACTOR_ID_BYTES, dtype=np.uint8)
    out[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def decode_actor_id(row: np.ndarray) -> str:
    """Inverse of encode_actor_id."""
    return bytes(np.asarray(row, dtype=np.uint8)).rstrip(b"\x00").decode("utf-8")


def source_columns(actor_id: str, index: int, policy_version: int, n_steps: int) -> dict[str, np.ndarray]:
    """The source columns of one episode of `n_steps` steps, to add to its arrays before storing."""
    return {
        SOURCE_ACTOR: np.repeat(encode_actor_id(actor_id)[None], n_steps, axis=0),  # (T, ACTOR_ID_BYTES)
        SOURCE_INDEX: np.full(n_steps, index, dtype=np.int64),  # (T,)
        SOURCE_POLICY_VERSION: np.full(n_steps, policy_version, dtype=np.int64),  # (T,)
    }


def source_of(episode: Mapping[str, np.ndarray]) -> tuple[str, int]:
    """(actor id, index) of a stored episode; KeyError names the missing column for episodes not from actors."""
    for key in (SOURCE_ACTOR, SOURCE_INDEX):
        if key not in episode:
            raise KeyError(
                f"episode has no {key!r} column; the learner's episode store writes "
                f"{list(SOURCE_KEYS)} with every episode (is this store from another tool?)"
            )
    return decode_actor_id(episode[SOURCE_ACTOR][0]), int(episode[SOURCE_INDEX][0])


class ActorLedger:
    """Per-actor count of stored episodes (= the index expected next from that actor)."""

    def __init__(self) -> None:
        self._stored: dict[str, int] = {}

    @classmethod
    def from_sources(cls, sources: Iterable[tuple[str, int]]) -> ActorLedger:
        """Rebuild from the (actor id, index) of every stored episode, in store order.

        Raises ValueError if an actor's indices are not 0, 1, 2, ... in order (the store was not written
        by this ledger's rules).
        """
        ledger = cls()
        for position, (actor_id, index) in enumerate(sources):
            if ledger.verdict(actor_id, index) is not Verdict.ACCEPT:
                raise ValueError(
                    f"stored episode {position} is index {index} of {actor_id!r}, but "
                    f"{ledger.expected(actor_id)} was expected next from that actor"
                )
            ledger.record(actor_id, index)
        return ledger

    def expected(self, actor_id: str) -> int:
        """The index the learner stores next from this actor (= episodes held from it)."""
        return self._stored.get(actor_id, 0)

    def verdict(self, actor_id: str, index: int) -> Verdict:
        expected = self.expected(actor_id)
        if index == expected:
            return Verdict.ACCEPT
        return Verdict.DUPLICATE if index < expected else Verdict.GAP

    def record(self, actor_id: str, index: int) -> None:
        """Count a stored episode; it must be the expected one."""
        if index != self.expected(actor_id):
            raise ValueError(f"record({actor_id!r}, {index}): expected index {self.expected(actor_id)}")
        self._stored[actor_id] = index + 1

    def counts(self) -> dict[str, int]:
        """{actor id: episodes stored}: the acks payload."""
        return dict(self._stored)

    @property
    def total(self) -> int:
        return sum(self._stored.values())
