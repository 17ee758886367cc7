"""The actor <-> learner protocol: topic names, QoS and payloads.

Every payload is self-describing safetensors bytes (`robot_rl.wire`: kind + schema version) in a
`std_msgs/UInt8MultiArray`; a reader refuses another kind or version with a log line naming both.

| topic                | type                     | direction         | QoS       | payload                          |
|----------------------|--------------------------|-------------------|-----------|----------------------------------|
| /learner/episodes    | std_msgs/UInt8MultiArray | actors -> learner | EPISODES  | one completed episode            |
| /learner/acks        | std_msgs/String (JSON)   | learner -> actors | LATCHED   | {actor_id: episodes stored}      |
| /learner/policy      | std_msgs/UInt8MultiArray | learner -> actors | LATCHED   | the latest full policy           |
| /learner/policy_delta| std_msgs/UInt8MultiArray | learner -> actors | LATCHED   | the latest trainable weights     |

Delivery guarantee: an actor numbers its completed episodes 0, 1, 2, ... (`EpisodeMeta.index`),
keeps every one in its own episode store, and resends those the learner has not acknowledged.
The learner stores an episode only if its index is the next one it expects from that actor
(so duplicates and gaps are impossible) and publishes, per actor, how many it holds. A learner
killed and restarted therefore ends up with every completed episode exactly once.
Late-joining actors receive the latest policy at once (transient-local durability).

Weights travel in two parts (`robot_rl.agents.policy_delta`): the learner publishes a full policy on
/learner/policy when its base (config + frozen image trunk) is new -- at start -- and after that only the
trainable tensors, in fp16, on /learner/policy_delta (~1.4 MB instead of 22 MB for a pixel policy). Both are
latched, so a (re)started actor gets the full policy and the newest delta at once, in either order, and applies
the delta to the full one when their bases match; a delta whose base it does not hold is kept until that full
policy arrives, counted and logged once.
Absolute names: actors in robot namespaces (`/robot_1`) and the learner meet on the same topics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import wire

EPISODES = "/learner/episodes"
ACKS = "/learner/acks"
POLICY = "/learner/policy"
POLICY_DELTA = "/learner/policy_delta"

POLICY_KIND = "policy"
POLICY_DELTA_KIND = "policy_delta"

# Episodes: reliable, deep queue, so a burst of resends after a learner restart is not dropped.
EPISODES_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# Acks and weights: only the newest matters, and a late joiner must get it at once.
LATCHED_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    history=HistoryPolicy.KEEP_LAST,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass(frozen=True)
class EpisodeMeta:
    """What travels with an episode's arrays."""

    actor_id: str  # unique per actor, e.g. its fully qualified node name "/robot_1/actor"
    index: int  # the actor's count of completed episodes before this one (0, 1, 2, ...)
    policy_version: int  # learner update step of the weights that acted (-1: warm-up / scripted / no policy)
    success: bool  # the episode reached the task's success
    task_meta: dict  # the env description (obs layout, rates, action scale) the actor acted in


def bytes_msg(payload: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.data = np.frombuffer(payload, dtype=np.uint8).tobytes()
    return msg


def msg_bytes(msg: UInt8MultiArray) -> bytes:
    return bytes(msg.data)


def episode_msg(episode: dict[str, np.ndarray], meta: EpisodeMeta) -> UInt8MultiArray:
    return bytes_msg(wire.encode_episode(episode, asdict(meta)))


def episode_from_msg(msg: UInt8MultiArray) -> tuple[dict[str, np.ndarray], EpisodeMeta]:
    """Raises wire.WireError on another kind/version or garbled bytes."""
    arrays, meta = wire.decode_episode(msg_bytes(msg))
    try:
        return arrays, EpisodeMeta(**meta)
    except TypeError as e:
        raise wire.WireError(f"episode metadata {sorted(meta)} does not match EpisodeMeta: {e}") from None


def policy_msg(policy_bytes: bytes, version: int, kind: str = POLICY_KIND) -> UInt8MultiArray:
    """`Policy.to_bytes()` (or, with kind POLICY_DELTA_KIND, `policy_delta.to_delta`) wrapped with the learner's
    update step as its version."""
    blob = np.frombuffer(policy_bytes, dtype=np.uint8)
    return bytes_msg(wire.encode(kind, {"policy": blob}, {"version": int(version)}))


def policy_from_msg(msg: UInt8MultiArray, kind: str = POLICY_KIND) -> tuple[bytes, int]:
    """-> (bytes for `Policy.from_bytes`, or a delta's with POLICY_DELTA_KIND, version). Raises wire.WireError."""
    arrays, meta = wire.decode(msg_bytes(msg), kind)
    blob, version = arrays.get("policy"), meta.get("version", -1)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise wire.WireError(f"policy payload must hold one 1-d uint8 array 'policy', got {sorted(arrays)[:5]}")
    if isinstance(version, bool) or not isinstance(version, int) or not -1 <= version <= 2**63 - 1:
        raise wire.WireError(f"policy version {str(version)[:40]} is not an int in [-1, 2^63)")
    return blob.tobytes(), version


def acks_msg(stored: dict[str, int]) -> String:
    return String(data=json.dumps(stored, sort_keys=True))


MAX_ACKS_BYTES = 1 << 20  # an acks message lists one count per actor: far below this
MAX_ACK_COUNT = 2**63 - 1  # counts are int64 everywhere downstream


def acks_from_msg(msg: String) -> dict[str, int]:
    """{actor_id: episodes stored}; raises wire.WireError unless a JSON object of ints in [0, 2^63)."""
    if len(msg.data) > MAX_ACKS_BYTES:
        raise wire.WireError(f"acks message of {len(msg.data)} bytes exceeds {MAX_ACKS_BYTES}")
    try:
        d = json.loads(msg.data)
    except (ValueError, RecursionError) as e:
        raise wire.WireError(f"acks message is not JSON: {str(e)[:200]}") from None
    if not isinstance(d, dict):
        raise wire.WireError(f"acks message is a JSON {type(d).__name__}, not an object of episode counts")
    bad = {k: v for k, v in d.items() if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_ACK_COUNT}
    if bad:
        shown = {k[:60]: str(v)[:40] for k, v in list(bad.items())[:3]}
        raise wire.WireError(f"acks message has counts that are not ints in [0, 2^63): {shown}")
    return d
