"""The learner node as a real process over real DDS, with the test process playing two actors.

Episodes are real scripted pick_cube demos (state obs) recorded in-process; the learner (real entry point,
`--ros-args`) stores them in a real zarr store and trains a small SAC agent on CPU. The tests run in order
on one learner: policy at start (latched), acks with dedupe and gaps, schema refusal, policy versions rising
with updates, kill -9 and restart on the same run dir, clean SIGINT. Run inside a private network namespace
(`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosprocs import Probe
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import wire
from robot_rl.agents import Policy
from robot_rl.agents.checkpoint import load_agent_files
from robot_rl.agents.policy_delta import apply_delta, base_id
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore
from robot_rl.learner.checkpoint import find_checkpoint
from robot_rl.learner.ledger import source_of
from robot_rl.nodes import learner as learner_node
from robot_rl.ros import protocol

pytestmark = pytest.mark.ros

A, B = "/robot_1/actor", "/robot_2/actor"
SMALL_AGENT = {"hidden_dims": [32, 32], "batch_size": 16, "utd_ratio": 2}


class _Actors(Probe):
    """A test-side rclpy node in its own context: publishes episodes, records acks and policies."""

    def __init__(self) -> None:
        super().__init__("fake_actors")
        self.episodes = self.node.create_publisher(UInt8MultiArray, protocol.EPISODES, protocol.EPISODES_QOS)
        self.acks: list[dict[str, int]] = []
        self.policies: list[tuple[bytes, int]] = []
        self.status: list[dict] = []  # the learner's /learner/status JSON
        self.node.create_subscription(
            String, learner_node.STATUS, lambda m: self.status.append(json.loads(m.data)), protocol.LATCHED_QOS
        )
        self.node.create_subscription(
            String, protocol.ACKS, lambda m: self.acks.append(protocol.acks_from_msg(m)), protocol.LATCHED_QOS
        )
        self.full: list[tuple[bytes, int]] = []  # the full policies alone (`policies` holds deltas too, as they came)
        self.node.create_subscription(UInt8MultiArray, protocol.POLICY, self._on_full, protocol.LATCHED_QOS)
        self.node.create_subscription(
            UInt8MultiArray,
            protocol.POLICY_DELTA,
            lambda m: self.policies.append(protocol.policy_from_msg(m, protocol.POLICY_DELTA_KIND)),
            protocol.LATCHED_QOS,
        )

    def _on_full(self, msg: UInt8MultiArray) -> None:
        self.full.append(protocol.policy_from_msg(msg))
        self.policies.append(self.full[-1])

    def send(self, payload: bytes) -> None:
        self.episodes.publish(protocol.bytes_msg(payload))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """{demos store, run dir, agent file, log dir, actors probe, 'proc': the running learner}."""
    root = tmp_path_factory.mktemp("ros_learner")
    record_scripted_demos(
        DemoConfig(
            task="pick_cube",
            episodes=4,
            out=root / "demos",
            obs_mode="state",
            noise=0.1,
            keep_failures=True,
            progress=False,
        )
    )
    (root / "agent.json").write_text(json.dumps(SMALL_AGENT))
    ctx = {"demos": EpisodeStore.open(root / "demos"), "root": root, "actors": _Actors(), "starts": 0}
    ctx["proc"] = _start_learner(ctx)
    yield ctx
    if ctx["proc"].poll() is None:
        ctx["proc"].kill()
        ctx["proc"].wait()
    ctx["actors"].close()


def _start_learner(ctx: dict) -> subprocess.Popen:
    ctx["starts"] += 1
    ctx["log"] = ctx["root"] / f"learner_{ctx['starts']}.log"
    root = ctx["root"]
    cmd = [
        str(Path(sys.executable).parent / "robot-rl-learner-node"),
        "--ros-args",
        "-p",
        f"out:={root / 'run'}",
        "-p",
        f"demos:={root / 'demos'}",
        "-p",
        f"agent_config:={root / 'agent.json'}",
        "-p",
        "min_steps_to_train:=20",
        "-p",
        "publish_every_updates:=20",
        "-p",
        "checkpoint_every_episodes:=2",
        "-p",
        "log_every_episodes:=2",
        "-p",
        "wandb_mode:=disabled",
        "-p",
        "ack_period_s:=0.5",
    ]
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"  # log lines reach the file as they happen
    with open(ctx["log"], "w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _episode(ctx: dict, i: int, actor: str, index: int) -> bytes:
    """Demo i as the actor `actor`'s episode number `index`, in the protocol's payload."""
    demos: EpisodeStore = ctx["demos"]
    meta = protocol.EpisodeMeta(
        actor, index, policy_version=-1, success=True, task_meta={"task": "pick_cube", "obs_mode": "state"}
    )
    return protocol.msg_bytes(protocol.episode_msg(demos.get_episode(i % demos.n_episodes), meta))


def _wait_learner_up(ctx: dict) -> None:
    actors = ctx["actors"]
    n_acks = len(actors.acks)
    up = actors.spin_until(
        lambda: (
            (len(actors.acks) > n_acks and actors.episodes.get_subscription_count() > 0)
            or ctx["proc"].poll() is not None
        ),
        timeout_s=40.0,
    )
    assert up and ctx["proc"].poll() is None, f"learner did not come up:\n{ctx['log'].read_text()}"


def test_policy_is_published_at_start_loads_and_reaches_a_late_joiner(setup):
    actors = setup["actors"]
    _wait_learner_up(setup)
    assert actors.spin_until(lambda: actors.policies, timeout_s=10.0), setup["log"].read_text()
    blob, version = actors.policies[-1]
    assert version == 0  # built from the demo store before any episode: actors can act at once
    policy = Policy.from_bytes(blob)
    action = policy.act({"state": np.zeros(28, dtype=np.float32)})
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)
    late: list[tuple[bytes, int]] = []
    actors.node.create_subscription(
        UInt8MultiArray, protocol.POLICY, lambda m: late.append(protocol.policy_from_msg(m)), protocol.LATCHED_QOS
    )
    assert actors.spin_until(lambda: late, timeout_s=5.0)  # transient local: the late joiner gets the latest
    assert late[0][1] == version


def test_acks_count_two_actors_store_duplicates_once_and_refuse_gaps(setup):
    actors = setup["actors"]
    for i, (actor, index) in enumerate([(A, 0), (A, 1), (B, 0), (A, 1), (B, 2)]):  # a duplicate, then a gap
        actors.send(_episode(setup, i, actor, index))
    assert actors.spin_until(lambda: actors.acks and actors.acks[-1] == {A: 2, B: 1}, timeout_s=15.0), actors.acks[-3:]
    heartbeats = len(actors.acks)
    actors.spin_until(lambda: False, timeout_s=3.0)  # ack_period_s 0.5; a checkpoint may hold the learner ~1 s
    assert len(actors.acks) >= heartbeats + 2 and actors.acks[-1] == {A: 2, B: 1}  # republished as a heartbeat
    log = setup["log"].read_text()
    assert f"refused episode 2 of '{B}': expected index 1 first" in log
    assert f"episode 1 of '{A}' is already stored" in log
    actors.send(_episode(setup, 1, B, 1))  # the actor resends the missing one: accepted
    assert actors.spin_until(lambda: actors.acks[-1] == {A: 2, B: 2}, timeout_s=10.0)


def test_another_schema_version_is_refused_with_a_log_line_naming_both(setup, monkeypatch):
    actors = setup["actors"]
    monkeypatch.setattr(wire, "WIRE_SCHEMA_VERSION", wire.WIRE_SCHEMA_VERSION + 1)  # an actor of a newer release
    newer = _episode(setup, 0, A, 2)
    monkeypatch.undo()
    actors.send(newer)
    actors.send(b"\x07" * 50)  # garbled bytes: counted (one log line per reason per 5 s), the learner lives on
    want = f"schema version {wire.WIRE_SCHEMA_VERSION + 1}, this robot_rl reads version {wire.WIRE_SCHEMA_VERSION}"
    assert actors.spin_until(lambda: want in setup["log"].read_text(), timeout_s=10.0), setup["log"].read_text()
    assert f"{protocol.EPISODES}: refused an episode payload" in setup["log"].read_text()
    assert actors.spin_until(lambda: actors.status and actors.status[-1]["refused"].get("unreadable") == 2, 10.0)
    assert setup["proc"].poll() is None and actors.acks[-1] == {A: 2, B: 2}


def test_policy_version_rises_as_updates_happen(setup):
    actors = setup["actors"]
    first = actors.policies[-1][1]
    for index in (2, 3):
        actors.send(_episode(setup, index, A, index))
    assert actors.spin_until(lambda: actors.policies[-1][1] >= first + 40, timeout_s=30.0), actors.policies[-1][1]
    versions = [v for _, v in actors.policies]
    assert versions == sorted(versions)
    assert len(actors.full) == 1 and actors.policies[-1] is not actors.full[-1]  # after the first, deltas only
    full = Policy.from_bytes(actors.full[-1][0])
    latest = apply_delta(full, base_id(full), actors.policies[-1][0])
    assert len(actors.policies[-1][0]) < 0.6 * len(actors.full[-1][0])  # fp16 trainable tensors, no config
    assert latest.act({"state": np.ones(28, np.float32)}).shape == (4,)


def test_kill_9_then_restart_restores_acks_and_resumes_training_from_the_checkpoint(setup):
    actors = setup["actors"]
    assert actors.spin_until(lambda: actors.acks[-1] == {A: 4, B: 2}, timeout_s=10.0)
    assert actors.spin_until(lambda: (setup["root"] / "run" / "checkpoints" / "latest").exists(), 10.0)
    actors.send(_episode(setup, 0, B, 2))  # ingested after the last checkpoint (every 2 episodes)
    assert actors.spin_until(lambda: actors.acks[-1].get(B) == 3, timeout_s=10.0)
    acked = dict(actors.acks[-1])
    setup["proc"].send_signal(signal.SIGKILL)
    setup["proc"].wait(timeout=10)
    checkpoint_step = load_agent_files(find_checkpoint(setup["root"] / "run") / "agent")[1]["step"]
    assert checkpoint_step > 0

    n_policies = len(actors.policies)
    setup["proc"] = _start_learner(setup)
    _wait_learner_up(setup)
    assert actors.spin_until(lambda: len(actors.policies) > n_policies, timeout_s=20.0), setup["log"].read_text()
    assert actors.acks[-1] == acked  # nothing acknowledged was lost
    restart_version = actors.policies[n_policies][1]
    published = re.compile(r"published policy version (\d+)")
    assert actors.spin_until(lambda: published.search(setup["log"].read_text()), timeout_s=5.0)
    first_published = published.search(setup["log"].read_text())
    assert int(first_published.group(1)) == checkpoint_step  # at once, with the checkpoint's weights: not a fresh agent
    assert restart_version >= checkpoint_step  # the latched policy a subscriber gets once DDS discovery matched
    assert "resumed" in setup["log"].read_text() and "from step_" in setup["log"].read_text()
    store = EpisodeStore.open(setup["root"] / "run" / "episodes")
    sources = [source_of(ep) for ep in store.iter_episodes()]
    assert sorted(sources) == sorted([(A, i) for i in range(acked[A])] + [(B, i) for i in range(acked[B])])
    # training goes on: the episode ingested after the checkpoint earns updates the restarted learner owes. Read from
    # its log, not from what the probe received: once DDS discovery matched (slow on a loaded machine) the latched
    # policy may already be the last one those updates publish.
    later = lambda: [int(v) for v in published.findall(setup["log"].read_text()) if int(v) > checkpoint_step]  # noqa: E731
    assert actors.spin_until(later, timeout_s=20.0), setup["log"].read_text()[-3000:]
    assert actors.spin_until(lambda: actors.policies[-1][1] == max(later()), timeout_s=10.0)  # and reaches the actors


def test_garbage_and_malformed_episodes_are_refused_and_counted_and_the_next_good_one_is_stored(setup):
    actors, C = setup["actors"], "/robot_3/actor"
    good = setup["demos"].get_episode(1)
    nan_action = {**good, "action": good["action"].copy()}
    nan_action["action"][2, 0] = np.nan
    meta = protocol.EpisodeMeta(C, 0, policy_version=-1, success=False, task_meta={"task": "pick_cube"})
    actors.send(os.urandom(4096))
    actors.send(protocol.msg_bytes(protocol.episode_msg(nan_action, meta)))  # malformed: refused for good
    actors.send(protocol.msg_bytes(protocol.episode_msg(good, protocol.EpisodeMeta(C, 1, -1, True, {}))))
    assert actors.spin_until(lambda: actors.acks[-1].get(C) == 2, timeout_s=15.0), setup["log"].read_text()[-3000:]
    assert actors.spin_until(lambda: actors.status[-1]["acks"].get(C) == 2, timeout_s=5.0)
    status = actors.status[-1]
    assert status["refused"]["non_finite"] == 1 and status["refused"]["unreadable"] >= 1  # since the restart
    assert status["layout"].startswith("the run's episodes") and setup["proc"].poll() is None
    log = setup["log"].read_text()
    assert f"{protocol.EPISODES}: refused episode 0 of '{C}': 'action' holds non-finite values" in log
    store = EpisodeStore.open(setup["root"] / "run" / "episodes")
    assert source_of(store.get_episode(store.n_episodes - 1)) == (C, 1)


def test_sigint_checkpoints_and_exits_zero(setup):
    proc = setup["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0, setup["log"].read_text()
    log = setup["log"].read_text()
    assert "stopped: checkpoint" in log
    progress = json.loads((find_checkpoint(setup["root"] / "run") / "progress.json").read_text())
    assert progress["episodes"] == 8
    lines = (setup["root"] / "run" / "train_episodes.jsonl").read_text().splitlines()
    assert len(lines) == 8 and json.loads(lines[-1])["actor_id"] == "/robot_3/actor"


def test_a_learner_without_a_run_dir_exits_2_saying_which_parameter_to_set(capsys):
    from robot_rl.nodes import learner

    assert learner.main(["robot-rl-learner-node", "--ros-args", "-p", "wandb_mode:=disabled"]) == 2
    assert "set 'out'" in capsys.readouterr().err
