"""rosbag2 MCAP files as robot_rl reads and writes them: where the file is, what it holds, its messages in order.

ROS-free (the `mcap` and `mcap-ros2-support` packages of the `interop` extra): messages are decoded with the
schemas the file carries (`ros2msg` text, CDR payloads), so a bag of standard messages reads without a ROS install.
The decoded objects have the messages' field names, so the actor's own converters read them as they read rclpy
messages.

A bag is a `.mcap` file, or a rosbag2 directory (`metadata.yaml` beside one `.mcap` file). Besides the robot's
topics (`robot_rl.ros.topics`), the actor publishes two topics of its own (relative to its namespace), and its
recording (`record_mcap:=true`) holds them too:

| topic | type | what |
|---|---|---|
| `actor/episode` | `std_msgs/String` (JSON) | `{"event": "start" \\| "end" \\| "discard", "episode": index, "steps": n, "verdict": ...}` |
| `actor/step` | `std_msgs/Float32MultiArray` | every action sent: `action`, `policy_action`, `base_action` (A each), `is_intervention` (1) |

The actor's recording also carries its parameters as MCAP metadata `robot_rl_actor` (`ActorConfig` fields as JSON
text), so `data import` rebuilds its observation layout without flags.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EPISODE_TOPIC = "actor/episode"  # relative: /robot_1/actor/episode
STEP_TOPIC = "actor/step"
ACTOR_METADATA = "robot_rl_actor"  # MCAP metadata record: {field: JSON text} of the recording actor's ActorConfig
EPISODE_EVENTS = ("start", "end", "discard")


class McapFormatError(ValueError):
    """A file that is no readable rosbag2 MCAP, or one whose topics cannot make episodes (the message says why)."""


def step_parts(action_dim: int) -> tuple[tuple[str, int], ...]:
    """(label, size) of the `actor/step` array, in order."""
    return (("action", action_dim), ("policy_action", action_dim), ("base_action", action_dim), ("is_intervention", 1))


def step_values(msg: Any) -> dict[str, np.ndarray]:
    """A decoded `actor/step` Float32MultiArray -> {label: float32 array} (its layout labels the parts)."""
    values = np.asarray(msg.data, dtype=np.float32)
    out, at = {}, 0
    for dim in msg.layout.dim:
        out[dim.label] = values[at : at + int(dim.size)]
        at += int(dim.size)
    if at != len(values) or set(out) != {name for name, _ in step_parts(0)}:
        raise McapFormatError(
            f"an {STEP_TOPIC} message is laid out as {[(d.label, d.size) for d in msg.layout.dim]} over "
            f"{len(values)} values; expected {[n for n, _ in step_parts(0)]}"
        )
    return out


def episode_event(msg: Any) -> dict:
    """A decoded `actor/episode` String -> its JSON dict (event one of EPISODE_EVENTS)."""
    try:
        event = json.loads(msg.data)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict) or event.get("event") not in EPISODE_EVENTS:
        raise McapFormatError(
            f"an {EPISODE_TOPIC} message is {msg.data!r}; expected JSON with event in {EPISODE_EVENTS}"
        )
    return event


def mcap_path(source: str | os.PathLike) -> Path:
    """The .mcap file of `source`: the file itself, or the one .mcap file of a rosbag2 directory."""
    source = Path(source)
    if source.is_file():
        if source.suffix != ".mcap":
            raise McapFormatError(f"{source} is not an .mcap file; give a rosbag2 MCAP file or its bag directory")
        return source
    if not source.is_dir():
        raise McapFormatError(f"{source} does not exist; give a rosbag2 MCAP file or its bag directory")
    files = sorted(source.glob("*.mcap"))
    if len(files) != 1 or not (source / "metadata.yaml").is_file():
        raise McapFormatError(
            f"{source} is not a rosbag2 MCAP bag: it holds {len(files)} .mcap files and "
            f"{'a' if (source / 'metadata.yaml').is_file() else 'no'} metadata.yaml (expected one of each; a bag split "
            "in several files: import each)"
        )
    return files[0]


@dataclass(frozen=True)
class Channel:
    topic: str
    schema: str  # ROS type name, e.g. "sensor_msgs/msg/JointState"
    encoding: str  # schema encoding: "ros2msg" (ours), "ros2idl", ...
    messages: int


@dataclass(frozen=True)
class BagSummary:
    path: Path  # the .mcap file
    channels: dict[str, Channel]  # topic -> channel
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # MCAP metadata records by name
    start_ns: int = 0  # first and last log time
    end_ns: int = 0
    profile: str = ""  # the header's profile: "ros2" for rosbag2

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.channels.values())


def _reader(stream):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    return make_reader(stream, decoder_factories=[DecoderFactory()])


def read_summary(source: str | os.PathLike) -> BagSummary:
    """Channels (topic, type, message count), metadata and time span of a bag; refuses what is not an MCAP file."""
    from mcap.exceptions import McapError

    path = mcap_path(source)
    try:
        with open(path, "rb") as stream:
            reader = _reader(stream)
            header, summary = reader.get_header(), reader.get_summary()
            metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
            if summary is None:  # a recording cut short (no summary section): count by reading it through
                return _scan(path, header.profile, metadata)
            counts = summary.statistics.channel_message_counts if summary.statistics else {}
            channels = {}
            for cid, ch in summary.channels.items():
                schema = summary.schemas.get(ch.schema_id)
                channels[ch.topic] = Channel(
                    ch.topic, schema.name if schema else "", schema.encoding if schema else "", int(counts.get(cid, 0))
                )
            stats = summary.statistics
            start, end = (stats.message_start_time, stats.message_end_time) if stats else (0, 0)
            return BagSummary(path, channels, metadata, start, end, header.profile)
    except (McapError, OSError, ValueError) as err:
        raise McapFormatError(f"{path} is not a readable MCAP file: {err}") from None


def _scan(path: Path, profile: str, metadata: dict) -> BagSummary:
    counts: dict[str, list] = {}
    start = end = None
    with open(path, "rb") as stream:
        for schema, channel, message in _reader(stream).iter_messages(log_time_order=False):
            entry = counts.setdefault(
                channel.topic, [schema.name if schema else "", schema.encoding if schema else "", 0]
            )
            entry[2] += 1
            start = message.log_time if start is None else min(start, message.log_time)
            end = message.log_time if end is None else max(end, message.log_time)
    channels = {t: Channel(t, s, e, n) for t, (s, e, n) in counts.items()}
    return BagSummary(path, channels, metadata, start or 0, end or 0, profile)


def iter_messages(path: Path, topics: list[str]) -> Iterator[tuple[str, Any, int]]:
    """(topic, decoded message, log time ns) of `topics`, in the order the file holds them (the recorder's order:
    for the actor's own recording, the order its callbacks ran)."""
    with open(path, "rb") as stream:
        for _schema, channel, message, decoded in _reader(stream).iter_decoded_messages(topics, log_time_order=False):
            yield channel.topic, decoded, message.log_time


def summary_dict(bag: BagSummary) -> dict:
    """A JSON-able summary for `robot-rl data info`: topics with types and counts, time span, and the episodes the
    actor's markers delimit (ended, discarded; None without an `actor/episode` topic)."""
    actor = bag.metadata.get(ACTOR_METADATA)
    marker_topics = [t for t in bag.channels if t.rstrip("/").endswith(EPISODE_TOPIC)]
    events = [episode_event(m)["event"] for _, m, _ in iter_messages(bag.path, marker_topics)] if marker_topics else []
    return {
        "path": str(bag.path.resolve()),
        "format": "rosbag2 mcap",
        "profile": bag.profile,
        "messages": bag.messages,
        "duration_s": round(bag.duration_s, 3),
        "episodes": events.count("end") if marker_topics else None,
        "episodes_discarded": events.count("discard") if marker_topics else None,
        "steps": sum(c.messages for t, c in bag.channels.items() if t.endswith(STEP_TOPIC)) or None,
        "topics": {t: {"type": c.schema, "messages": c.messages} for t, c in sorted(bag.channels.items())},
        "recorded_by_actor": {k: json.loads(v) for k, v in actor.items()} if actor else None,
    }
