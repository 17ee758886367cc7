"""What one ingest of an episode payload comes to (`Outcome`, `IngestResult`), a policy publication (`PolicyPush`),
and the checks of an episode's header (`episode_meta`) -- the vocabulary of `LearnerService` (service.py) and
the learner node that acks and publishes on its behalf.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from robot_rl.learner.ledger import encode_actor_id


class Outcome(Enum):
    STORED = "stored"  # new episode, durable, in replay
    DUPLICATE = "duplicate"  # already held: ignored
    GAP = "gap"  # an earlier episode of the actor is missing: refused
    REFUSED = "refused"  # unreadable, another schema, or does not fit the layout/store (see IngestResult.reason)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    message: str  # what happened, for the log (names actor, index and the reason)
    actor_id: str = ""
    steps: int = 0
    reason: str = ""  # why it was refused (the status counter): unreadable, too_large, gap, layout, length, ...


@dataclass(frozen=True)
class PolicyPush:
    """One policy publication: a full policy (`Policy.to_bytes`, for /learner/policy) or a delta of its trainable
    tensors (`policy_delta.to_delta`, for /learner/policy_delta); version = the learner's update step."""

    payload: bytes
    version: int
    delta: bool


def episode_meta(meta: dict) -> tuple[str, int, int, dict]:
    """(actor id, episode index, policy version, task_meta) of an episode payload, each of its exact type: a float
    index 0.5 or a string "0" was coerced by int() and stored as episode 0, an actor id 5 as '5'. ValueError if not."""
    actor_id, index, policy_version = meta.get("actor_id"), meta.get("index"), meta.get("policy_version", -1)
    task_meta = meta.get("task_meta") or {}
    if not isinstance(actor_id, str):
        raise ValueError(f"actor_id must be a string, got {type(actor_id).__name__}")
    encode_actor_id(actor_id)  # 1..128 bytes: the id the store and the acks can hold
    for name, value in (("index", index), ("policy_version", policy_version)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"episode {name} must be an integer, got {type(value).__name__} {value!r}"[:200])
    if not 0 <= index < 2**63:  # the store's source_index column is int64
        raise ValueError(f"episode index {index} must be in [0, 2**63)"[:200])
    if not -1 <= policy_version < 2**63:
        raise ValueError(f"policy_version {policy_version} must be in [-1, 2**63)"[:200])
    if not isinstance(task_meta, dict):
        raise ValueError(f"task_meta must be a JSON object, got {type(task_meta).__name__}")
    return actor_id, index, policy_version, task_meta
