"""`robot-rl data import BAG --format rosbag2`: a rosbag2 MCAP recording of a robot's topics as an episode store.

Observations are made exactly as the actor node makes them: each message goes through the actor's own converter
(`robot_rl.nodes.actor_inputs.table`, so this needs the `ros` extra's message packages as well as `interop`) into
its `ObservationAssembler` (freshest sample; unstamped messages stamped with their log time), episodes advance in
its `EpisodeMachine` (success ends one terminated, `max_episode_steps` truncated, a stale input pauses it) and are
written by its `EpisodeRecorder`, so the store has the layout the actor writes. Two ways to find the steps:

- the actor's own steps: a bag with the actor's `actor/step` and `actor/episode` topics (its `record_mcap:=true`
  recording, or `ros2 bag record` of its namespace) is replayed in file order: an observation is assembled where
  the actor assembled one (each episode start, each action it sent, each episode end), the actions and the
  intervention flags are the recorded ones. Of the actor's own recording this gives its store back, step for step.
- resampled: otherwise (or with `--segment-on success` / `--episode-s`) observations are taken on a grid at the
  control rate from the freshest sample not newer than each tick; a tick where an input is older than
  `max_staleness_s` pauses the episode (no step). The action of a step is the `ee_command` twist sent in its tick
  period (none: a hold) with the latest `gripper_command`; `is_intervention` is `teleop/command`'s engaged flag.
  Episodes begin and end at the `actor/episode` markers (`--segment-on markers`, the default), or at the task's
  success (`--segment-on success`: an episode ends where `task/success` turns true, the next begins once it is
  false again), or every S seconds (`--episode-s S`, success still ending one early).

Refused, in one line: a bag with none of the robot's topics, a topic of ours with another message type, inputs the
layout needs missing, no episode markers and no rule, no episode found.
"""

from __future__ import annotations

import json
import os
import shutil
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.acting.config import ActorConfig
from robot_rl.acting.episode import EpisodeMachine, Phase
from robot_rl.acting.observation import ObservationAssembler
from robot_rl.data import mcap_format as mf
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore

SEGMENT_RULES = ("markers", "success")
COMMAND_TOPICS = ("ee_command", "gripper_command", "teleop/command")  # read in resampled mode


@dataclass(frozen=True)
class BagImportResult:
    out: Path
    episodes: int
    steps: int
    mode: str  # "actor steps" or "resampled at <rate> Hz"
    namespace: str  # topic prefix of the robot, e.g. "/robot_1/"
    cameras: tuple[str, ...]
    paused_ticks: int  # resampled mode: ticks skipped because an input was stale
    refused: dict[str, int]  # topic -> messages its converter refused
    ignored: tuple[str, ...]  # topics of the bag that are not read


def _config(bag: mf.BagSummary, settings: dict[str, Any]) -> ActorConfig:
    """The recording actor's parameters (MCAP metadata), then `settings` over them."""
    recorded = {k: json.loads(v) for k, v in bag.metadata.get(mf.ACTOR_METADATA, {}).items()}
    known = {f.name: f for f in fields(ActorConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in (recorded | settings).items() if k in known}
    cfg = replace(ActorConfig(), **values)
    try:
        cfg.validate()
    except ValueError as err:
        raise mf.McapFormatError(f"the bag's actor settings do not make a layout: {err}") from None
    return cfg


def _namespace(bag: mf.BagSummary, namespace: str | None) -> str:
    if namespace is not None:
        return "/" + namespace.strip("/") + "/" if namespace.strip("/") else "/"
    found = sorted({t[: -len("joint_states")] for t in bag.channels if t.endswith("joint_states")})
    if len(found) > 1:
        raise mf.McapFormatError(f"{bag.path} holds several robots' joint_states ({found}); pick one with --namespace")
    return found[0] if found else "/"


def _type_name(msg_type: type) -> str:
    return f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"


def _inputs(bag: mf.BagSummary, cfg: ActorConfig, ns: str, topics: list[str] | None) -> dict[str, Any]:
    """input name -> converter, for the layout's inputs; refuses a bag without them or with other message types."""
    from robot_rl.nodes import actor_inputs  # rclpy's message packages (the ros extra)

    layout = cfg.layout()
    table = actor_inputs.table(layout, actor_inputs.CameraInputs(layout, cfg.camera_boxes()))
    wanted = {ns + name: (name, _type_name(msg_type), fn) for name, msg_type, _qos, fn in table}
    present = {t: c for t, c in bag.channels.items() if topics is None or t in topics}
    ours = [t for t in wanted if t in present]
    if not ours:
        raise mf.McapFormatError(
            f"{bag.path} has none of the robot's topics: it holds {sorted(present)[:8]}, an import reads "
            f"{sorted(wanted)} (--namespace picks the robot)"
        )
    for topic in ours:
        channel, expected = present[topic], wanted[topic][1]
        if channel.schema != expected or channel.encoding not in ("ros2msg", ""):
            raise mf.McapFormatError(
                f"{topic} holds {channel.schema} ({channel.encoding}); the actor reads it as {expected} (ros2msg)"
            )
    missing = sorted(set(wanted) - set(ours))
    if missing:
        raise mf.McapFormatError(
            f"{bag.path} lacks {missing}, which a {cfg.obs_mode} observation of {cfg.task} needs (set --obs-mode, "
            "--cameras or --task to what was recorded)"
        )
    return {wanted[t][0]: wanted[t][2] for t in ours}


def _start(machine: EpisodeMachine) -> None:
    """RUNNING from any phase, through the actor's own transitions (its reset handshake has no place in a bag)."""
    machine.finish()
    machine.request_reset(0.0)
    machine.reset_answered(True, 0.0)
    machine.start()


class _Replay:
    """The actor's assembler, episode machine and recorder over one store; `close_step` records a pending step."""

    def __init__(self, cfg: ActorConfig, store: EpisodeStore, max_episode_steps: int, inputs: dict[str, Any]):
        self.inputs = inputs  # input name -> the actor's converter
        self.teleop_timeout_s = cfg.teleop_timeout_s
        self.layout = cfg.layout()
        self.assembler = ObservationAssembler(self.layout, cfg.max_staleness_s)
        self.machine = EpisodeMachine(max_episode_steps)
        self.recorder = EpisodeRecorder(store)
        self.pending: dict[str, np.ndarray] | None = None  # action, policy_action, base_action, is_intervention
        self.refused: Counter = Counter()

    def put(self, topic: str, name: str, msg: Any, log_s: float) -> None:
        try:
            value, stamp_s = self.inputs[name](msg)
            self.assembler.put(name, value, log_s if stamp_s is None else stamp_s)
        except ValueError:  # a message the actor's guard would refuse
            self.refused[topic] += 1

    def begin(self) -> None:
        self.recorder.discard()
        self.recorder.start(*self.assembler.assemble())
        _start(self.machine)
        self.pending = None

    def close_step(self, verdict: str | None = None) -> bool:
        """Record the pending step with the observation now (as `ActorNode._act`); True when the episode ended."""
        obs, info = self.assembler.assemble()
        outcome = self.machine.record_step(info["success"], verdict)
        if verdict:
            info = {**info, "success": verdict == "success"}
        p = self.pending
        self.recorder.step(
            p["action"],
            obs,
            outcome.reward,
            outcome.terminated,
            outcome.truncated,
            info,
            base_action=p["base_action"],
            policy_action=p["policy_action"],
            is_intervention=bool(p["is_intervention"][0] > 0.5),
        )
        self.pending = None
        return outcome.done

    def end(self) -> None:
        if self.recorder.n_steps:
            self.recorder.end()
        self.recorder.discard()
        self.machine.finish()


def _replay_actor(replay: _Replay, path: Path, ns: str, topics: list[str]) -> None:
    """The actor's own steps, in file order: observe at each start marker, each action sent and each end marker."""
    for topic, msg, log_ns in mf.iter_messages(path, topics):
        name = topic[len(ns) :]
        if name in replay.inputs:
            replay.put(topic, name, msg, log_ns * 1e-9)
        elif name == mf.EPISODE_TOPIC:
            event = mf.episode_event(msg)
            if event["event"] == "start":
                replay.begin()
            elif event["event"] == "end" and replay.recorder.recording and replay.pending is not None:
                replay.close_step(event.get("verdict"))
                replay.end()
            else:  # discard, or an end without a step: nothing to store
                replay.recorder.discard()
                replay.machine.finish()
        elif name == mf.STEP_TOPIC and replay.recorder.recording:
            if replay.pending is not None:
                replay.close_step()
            replay.pending = mf.step_values(msg)


@dataclass
class _Timeline:
    """A resampled bag: input samples by time, commands and markers, read once."""

    samples: list[tuple[float, str, str, Any]]  # (time s, topic, input name, message) sorted by time
    twists: list[tuple[float, Any]]  # ee_command (stamp s, message)
    grippers: list[tuple[float, float]]  # gripper_command (log time s, closing)
    teleop: list[tuple[float, bool]]  # teleop/command (stamp s, engaged)
    markers: list[tuple[float, dict]]  # actor/episode (log time s, event)


def _read_timeline(path: Path, ns: str, inputs: dict, topics: list[str]) -> _Timeline:
    from robot_rl.ros import convert, teleop_convert

    t = _Timeline([], [], [], [], [])
    for topic, msg, log_ns in mf.iter_messages(path, topics):
        name, log_s = topic[len(ns) :], log_ns * 1e-9
        stamp_s = convert.seconds_from_stamp(msg.header.stamp) if hasattr(msg, "header") else log_s
        if name in inputs:
            t.samples.append((stamp_s, topic, name, msg))
        elif name == "ee_command":
            t.twists.append((stamp_s, msg))
        elif name == "gripper_command":
            t.grippers.append((log_s, float(msg.data)))
        elif name == "teleop/command":
            t.teleop.append((stamp_s, bool(teleop_convert.teleop_fields_from_msg(msg, "base")["engaged"])))
        elif name == mf.EPISODE_TOPIC:
            t.markers.append((log_s, mf.episode_event(msg)))
    for part in (t.samples, t.twists, t.grippers, t.teleop, t.markers):
        part.sort(key=lambda item: item[0])
    return t


def _action_at(replay: _Replay, timeline: _Timeline, t_s: float) -> dict[str, np.ndarray]:
    """The action of the step observed at t_s: the last ee_command in [t_s, t_s + dt), the latest gripper closing."""
    from robot_rl.ros import convert, topics

    dt = replay.layout.dt_s
    g = bisect_right([x for x, _ in timeline.grippers], t_s + dt - 1e-9)
    gripper = timeline.grippers[g - 1][1] if g else 0.0
    window = [m for s, m in timeline.twists if t_s - 1e-9 <= s < t_s + dt - 1e-9]
    if window:
        cmd = convert.command_from_twist(window[-1], dt, gripper, topics.BASE_FRAME)
    else:
        from robot_rl.interfaces import EECommand

        cmd = EECommand(delta_pos_m=np.zeros(3), delta_rotvec_rad=np.zeros(3), gripper=gripper)
    action = replay.layout.action_from_command(cmd)
    k = bisect_right([x for x, _ in timeline.teleop], t_s + 1e-9)
    engaged = bool(k and timeline.teleop[k - 1][1] and t_s - timeline.teleop[k - 1][0] <= replay.teleop_timeout_s)
    return {"action": action, "policy_action": action, "base_action": np.zeros_like(action),
            "is_intervention": np.array([float(engaged)], np.float32)}  # fmt: skip


def _replay_grid(replay: _Replay, timeline: _Timeline, rule: str) -> int:
    """Resample at the control rate; returns the ticks paused for stale inputs."""
    if not timeline.samples:
        return 0
    dt, m = replay.layout.dt_s, replay.machine
    t0, t_end = timeline.samples[0][0], timeline.samples[-1][0]
    starts = [s for s, e in timeline.markers if e["event"] == "start"]
    stops = [(s, e["event"]) for s, e in timeline.markers if e["event"] != "start"]
    fed, paused, k = 0, 0, 0
    while (t := t0 + k * dt) <= t_end + 1e-9:
        k += 1
        while fed < len(timeline.samples) and timeline.samples[fed][0] <= t + 1e-9:
            _, topic, name, msg = timeline.samples[fed]
            replay.put(topic, name, msg, timeline.samples[fed][0])
            fed += 1
        if rule == "markers" and stops and stops[0][0] <= t + 1e-6:
            t_stop, event = stops.pop(0)
            starts = [s for s in starts if s > t_stop]  # a start that found no fresh inputs before its end
            if event == "discard":
                replay.recorder.discard()
            elif replay.recorder.recording and replay.pending is not None:
                replay.close_step()
            replay.end()
        if not replay.recorder.recording:
            wants = (starts and starts[0] <= t + 1e-6) if rule == "markers" else True
            if wants and not replay.assembler.stale(t) and not (rule == "success" and _success_now(replay)):
                starts = starts[1:] if rule == "markers" else starts
                replay.begin()
                replay.pending = _action_at(replay, timeline, t)
            continue
        m.check_inputs(replay.assembler.stale(t), t)
        if m.phase is Phase.PAUSED:
            paused += 1
            continue
        if replay.close_step():
            replay.end()
            continue
        replay.pending = _action_at(replay, timeline, t)
    return paused


def _success_now(replay: _Replay) -> bool:
    return bool(replay.assembler.assemble()[1]["success"])


def import_rosbag2(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    settings: dict[str, Any] | None = None,
    topics: list[str] | None = None,
    namespace: str | None = None,
    segment_on: str | None = None,
    episode_s: float | None = None,
) -> BagImportResult:
    """Read the bag at `source` into a new store at `out`. `settings`: ActorConfig fields over the recorded ones
    (task, obs_mode, cameras, image_size, control_rate_hz, max_staleness_s, max_episode_steps, ...)."""
    bag = mf.read_summary(source)
    cfg = _config(bag, settings or {})
    layout = cfg.layout()
    ns = _namespace(bag, namespace)
    inputs = _inputs(bag, cfg, ns, topics)
    readable = [t for t in bag.channels if topics is None or t in topics]
    own = [ns + n for n in (*inputs, mf.EPISODE_TOPIC, mf.STEP_TOPIC, *COMMAND_TOPICS)]
    read = [t for t in readable if t in own]
    actor_steps = ns + mf.STEP_TOPIC in read and segment_on in (None, "markers") and episode_s is None
    rule = segment_on or "markers"
    if not actor_steps and rule == "markers" and episode_s is None and ns + mf.EPISODE_TOPIC not in read:
        raise mf.McapFormatError(
            f"{bag.path} has no episode markers ({ns}{mf.EPISODE_TOPIC}); give a rule: --segment-on success or "
            "--episode-s S"
        )
    steps = round(episode_s * layout.control_rate_hz) if episode_s else layout.max_episode_steps
    if Path(out).exists():
        raise mf.McapFormatError(f"--out {out} exists; the import writes a new episode store (choose a new path)")
    meta = layout.task_meta() | {"source": "rosbag2", "bag": str(bag.path.resolve())}
    rule = "episode_s" if episode_s and rule == "markers" else rule
    try:
        with EpisodeStore.create(out, meta) as store:
            replay = _Replay(cfg, store, max(1, steps), inputs)
            paused = 0
            if actor_steps:
                _replay_actor(replay, bag.path, ns, read)
            else:
                paused = _replay_grid(replay, _read_timeline(bag.path, ns, inputs, read), rule)
            if store.n_episodes == 0:
                how = "the actor's steps" if actor_steps else f"resampled, rule {rule}"
                raise mf.McapFormatError(
                    f"{bag.path}: no episode found ({how}; {paused} ticks paused for stale inputs, refused "
                    f"{dict(replay.refused) or 'no messages'})"
                )
            n_episodes, n_steps = store.n_episodes, store.n_steps
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a failed import leaves nothing
        raise
    return BagImportResult(
        Path(out),
        n_episodes,
        n_steps,
        "actor steps" if actor_steps else f"resampled at {layout.control_rate_hz:g} Hz",
        ns,
        layout.image_cameras,
        paused,
        dict(replay.refused),
        tuple(sorted(set(readable) - set(read))),
    )
