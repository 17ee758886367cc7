"""The actor's MCAP recording (`record_mcap:=true`): its inputs and outputs as a rosbag2-compatible file, off the tick.

What is written, each message under its resolved topic name (`/robot_1/joint_states`), CDR-serialised with
rclpy and described by its `ros2msg` schema (the .msg text with its dependencies, as rosbag2 writes it), so
`ros2 bag info`, Foxglove and `robot-rl data import --format rosbag2` read it:

- every robot input as it arrived (joint states, pose, twist, gripper, task topics, images) and every
  `teleop/command`, log time = the node's clock at receipt (sim time under `use_sim_time`);
- every command sent (`ee_command`, `gripper_command`, holds included) and, per action, `actor/step`
  (executed, proposed and base action, is_intervention); `actor/episode` start / end / discard markers
  (`robot_rl.data.mcap_format`);
- the actor's parameters as the metadata record `robot_rl_actor`.

Messages go in the order the node's (single-threaded) callbacks ran, which is what lets the import assemble
each observation from exactly the samples the actor held. The tick only appends to a bounded queue; a writer
thread serialises and writes. When the queue is full the message is dropped and counted (`dropped`), never
waited for. The file is `<store>_<UTC time>.mcap` beside the store; `close()` (at node exit) writes its summary.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import queue
import re
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
from mcap.writer import CompressionType, Writer
from rclpy.serialization import serialize_message
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, String

from robot_rl.data import mcap_format as mf

SEPARATOR = "=" * 80
PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "string", "wstring",
}  # fmt: skip


def type_name(msg_type: type) -> str:
    """rclpy message class -> "pkg/msg/Name"."""
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _msg_file(package: str, name: str) -> Path:
    roots = [Path(sys.prefix) / "share"] + [
        Path(p) / "share" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p
    ]
    for root in roots:
        if (path := root / package / "msg" / f"{name}.msg").is_file():
            return path
    raise FileNotFoundError(f"no definition of {package}/msg/{name} under {[str(r) for r in roots]}")


def msgdef_text(full_name: str) -> str:
    """The rosbag2 `ros2msg` schema of "pkg/msg/Name": its .msg text, then each dependency's after a separator line."""
    package, _, name = full_name.split("/")
    text = _msg_file(package, name).read_text()
    done, todo, parts = {f"{package}/{name}"}, [(package, text)], [text.rstrip("\n")]
    while todo:
        pkg, body = todo.pop()
        for line in body.splitlines():
            field_type = re.sub(r"\[.*\]", "", line.split("#")[0].strip().split(" ")[0]) if line.strip() else ""
            if not field_type or field_type in PRIMITIVES or field_type.startswith(("string<", "wstring<")):
                continue
            dep = (
                "std_msgs/Header"
                if field_type == "Header"
                else field_type
                if "/" in field_type
                else f"{pkg}/{field_type}"
            )
            if dep not in done:
                done.add(dep)
                dep_pkg, dep_name = dep.split("/")
                dep_text = _msg_file(dep_pkg, dep_name).read_text()
                parts.append(f"{SEPARATOR}\nMSG: {dep}\n{dep_text.rstrip()}")
                todo.append((dep_pkg, dep_text))
    return "\n".join(parts) + "\n"


def step_msg(executed: np.ndarray, proposed: np.ndarray, base: np.ndarray, is_intervention: bool) -> Float32MultiArray:
    """The `actor/step` message of one action (layout `mcap_format.step_parts`)."""
    parts = (executed, proposed, base, [float(is_intervention)])
    msg = Float32MultiArray(data=np.concatenate([np.asarray(p, np.float32).reshape(-1) for p in parts]).tolist())
    msg.layout.dim = [MultiArrayDimension(label=n, size=k, stride=k) for n, k in mf.step_parts(len(executed))]
    return msg


def episode_msg(event: str, **fields: Any) -> String:
    """The `actor/episode` marker: {"event": start | end | discard, ...fields} as JSON."""
    return String(data=json.dumps({"event": event} | fields))


class McapRecorder:
    """A rosbag2 MCAP file written by a thread from a bounded queue; `write` never blocks."""

    def __init__(self, path: Path, config: Any, max_queue: int = 2000):
        self.path = path
        self.dropped = 0  # messages not written because the queue was full
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stream = open(path, "wb")
        self._writer = Writer(self._stream, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library="robot_rl actor")
        fields = {f.name: json.dumps(getattr(config, f.name)) for f in dataclasses.fields(config)}
        self._writer.add_metadata(mf.ACTOR_METADATA, fields)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="mcap-writer", daemon=True)
        self._thread.start()

    def write(self, topic: str, msg: Any, log_ns: int) -> None:
        """Queue one message (published or received at node-clock `log_ns`); dropped and counted when full."""
        try:
            self._queue.put_nowait((topic, msg, log_ns))
        except queue.Full:
            self.dropped += 1

    def _channel(self, topic: str, msg: Any) -> int:
        if topic not in self._channels:
            name = type_name(type(msg))
            if name not in self._schemas:
                self._schemas[name] = self._writer.register_schema(name, "ros2msg", msgdef_text(name).encode())
            self._channels[topic] = self._writer.register_channel(topic, "cdr", self._schemas[name])
        return self._channels[topic]

    def _run(self) -> None:
        sequence = 0
        while (item := self._queue.get()) is not None:
            topic, msg, log_ns = item
            sequence += 1
            self._writer.add_message(
                self._channel(topic, msg), log_time=log_ns, data=serialize_message(msg), publish_time=log_ns,
                sequence=sequence,
            )  # fmt: skip
            self.written += 1

    def close(self) -> None:
        """Write what is queued, then the file's summary and footer."""
        self._queue.put(None)
        self._thread.join()
        self._writer.finish()
        self._stream.close()


def recording_path(store: str) -> Path:
    """`<store>_<UTC time>.mcap` beside the store."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    store_path = Path(store).resolve()
    return store_path.parent / f"{store_path.name}_{stamp}.mcap"


class ActorTrace:
    """What the actor node tells the world about its episodes, and its optional recording, behind one-line calls:
    publishes `actor/episode` and `actor/step` (so `ros2 bag record` of its namespace can be imported too) and, with
    `record_mcap`, queues every input, command, step and marker for the McapRecorder."""

    def __init__(self, node: Any, config: Any, store: str):
        from robot_rl.ros import topics

        self._node = node
        self._topics: dict[str, str] = {}  # relative name -> resolved topic
        self.pub_episode = node.create_publisher(String, mf.EPISODE_TOPIC, topics.STATE_QOS)
        self.pub_step = node.create_publisher(Float32MultiArray, mf.STEP_TOPIC, topics.STATE_QOS)
        self.bag = McapRecorder(recording_path(store), config) if config.record_mcap else None
        if self.bag is not None:
            node.get_logger().info(f"recording inputs, commands and episodes to {self.bag.path}")

    def _topic(self, name: str) -> str:
        if name not in self._topics:
            self._topics[name] = self._node.resolve_topic_name(name)
        return self._topics[name]

    def record(self, name: str, msg: Any, log_ns: int) -> None:
        """Queue a message received or published on the relative topic `name` (nothing without record_mcap)."""
        if self.bag is not None:
            self.bag.write(self._topic(name), msg, log_ns)

    def step(self, executed, proposed, base, is_intervention: bool, log_ns: int) -> None:
        """An action was sent: publish (and record) its `actor/step`."""
        msg = step_msg(executed, proposed, base, is_intervention)
        self.pub_step.publish(msg)
        self.record(mf.STEP_TOPIC, msg, log_ns)

    def episode(self, event: str, log_ns: int, **fields: Any) -> None:
        """An episode started, ended or was discarded: publish (and record) the `actor/episode` marker."""
        msg = episode_msg(event, **fields)
        self.pub_episode.publish(msg)
        self.record(mf.EPISODE_TOPIC, msg, log_ns)

    def status(self) -> dict | None:
        if self.bag is None:
            return None
        return {"path": str(self.bag.path), "written": self.bag.written, "dropped": self.bag.dropped}

    def close(self) -> None:
        if self.bag is not None:
            self.bag.close()
