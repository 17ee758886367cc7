"""End to end through ROS 2: sim robot + actor + learner processes learn pick_cube; the learner survives kill -9;
two robots with two actors feed one learner.

Every node is a real process started with the shipped node table's command line (`launch/setups/*.yaml`, the
same `--ros-args` as `robot-rl up` and `ros2 launch`), talking over real DDS inside the test's private network
namespace (`./run.sh test`). The sim runs at 3x real time on its own clock; the actor follows it (use_sim_time).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_rl.data.store import EpisodeStore
from robot_rl.learner.ledger import source_of
from robot_rl.nodes.table import load_table

pytestmark = [pytest.mark.ros, pytest.mark.slow]

BIN = Path(sys.executable).parent
STORED_RE = re.compile(r"episode (\d+) stored and sent")
LEARNED_RATE, WINDOW = 0.6, 20  # rolling success of the actor's (stochastic) policy that counts as learned


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"  # log lines reach the files as they happen
    return env


def _record_demos(cwd: Path) -> None:
    subprocess.run(
        [
            str(BIN / "robot-rl"),
            "demos",
            "record",
            "--task",
            "pick_cube",
            "--scripted",
            "--episodes",
            "20",
            "--obs",
            "state",
            "--out",
            "demos",
            "--no-progress",
        ],
        cwd=cwd,
        env=_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _records(run: Path) -> list[dict]:
    """train_episodes.jsonl as written so far (a half-written last line is skipped)."""
    path = run / "train_episodes.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _stored(log: Path) -> int:
    """Episodes the actor has completed, stored and sent, from its log."""
    found = [int(m) for m in STORED_RE.findall(log.read_text())]
    return max(found) + 1 if found else 0


class _Procs:
    """The nodes of one setup as separate processes, each logging to its own file."""

    def __init__(self, cwd: Path, setup: str, sets: list[str]) -> None:
        self.cwd, self.procs, self.logs, self.starts = cwd, {}, {}, {}
        table = load_table(setup).with_sets(sets)
        self.commands = {n.fqn: [str(BIN / n.executable), *n.ros_args()] for n in table.select(use_sim=True)}

    def start(self, fqn: str) -> None:
        self.starts[fqn] = self.starts.get(fqn, 0) + 1
        log = self.cwd / f"{fqn.strip('/').replace('/', '_')}_{self.starts[fqn]}.log"
        with open(log, "w") as out:
            self.procs[fqn] = subprocess.Popen(
                self.commands[fqn], cwd=self.cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT
            )
        self.logs[fqn] = log

    def alive(self, fqn: str) -> bool:
        return self.procs[fqn].poll() is None

    def dump(self) -> str:
        return "\n".join(
            f"--- {f} (tail) ---\n{''.join(log.read_text().splitlines(True)[-25:])}" for f, log in self.logs.items()
        )

    def stop(self, fqn: str, timeout_s: float = 30.0) -> int:
        """SIGINT one node and wait; it leaves the set `_wait` watches (a node stopped on purpose has not died)."""
        proc = self.procs.pop(fqn)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -9

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait(predicate, timeout_s: float, procs: _Procs, what: str, poll_s: float = 0.5) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        dead = [f for f in procs.procs if not procs.alive(f)]
        assert not dead, f"{dead} died while waiting for {what}\n{procs.dump()}"
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{procs.dump()}")


def _rolling_success(records: list[dict]) -> float:
    last = records[-WINDOW:]
    return sum(r["success"] for r in last) / len(last) if len(last) == WINDOW else 0.0


@pytest.mark.timeout(1500)  # ~4-5 min on 2 idle cores
def test_sim_actor_learner_learn_pick_cube_and_a_learner_killed_with_9_resumes_losing_no_episode(tmp_path):
    _record_demos(tmp_path)
    run, sim, actor, learner = tmp_path / "runs" / "learner", "/robot_1/sim_robot", "/robot_1/actor", "/learner"
    procs = _Procs(
        tmp_path,
        "sim_train",
        [
            "sim_robot:real_time_factor:=3.0",
            "learner:demos:=demos",
            f"learner:out:={run}",
            "learner:checkpoint_every_episodes:=10",
            "learner:log_every_episodes:=5",
            "learner:wandb_mode:=offline",
        ],
    )
    t0 = time.monotonic()
    try:
        for fqn in (sim, actor, learner):
            procs.start(fqn)
        # phase 1: learning starts; a checkpoint exists
        _wait(
            lambda: len(_records(run)) >= 20 and (run / "checkpoints" / "latest").exists(),
            300,
            procs,
            "20 episodes at the learner and a checkpoint",
        )
        before_kill = len(_records(run))
        procs.procs[learner].kill()  # SIGKILL: no chance to checkpoint or flush anything
        procs.procs[learner].wait()
        del procs.procs[learner]
        # phase 2: the learner is gone; the actor keeps the robot acting (on_learner_lost=continue) and keeps storing
        stored_at_kill = _stored(procs.logs[actor])
        _wait(
            lambda: (
                "learner lost" in procs.logs[actor].read_text() and _stored(procs.logs[actor]) >= stored_at_kill + 2
            ),
            120,
            procs,
            "the actor to notice the lost learner and complete two more episodes",
        )
        assert procs.alive(sim) and procs.alive(actor)
        # phase 3: a restarted learner resumes from its checkpoint and store, gets the missed episodes, learns on
        procs.start(learner)
        _wait(lambda: "resumed" in procs.logs[learner].read_text(), 120, procs, "the restarted learner to resume")
        resumed_line = next(x for x in procs.logs[learner].read_text().splitlines() if "resumed" in x)
        assert "from step_" in resumed_line, resumed_line
        _wait(
            lambda: len(_records(run)) >= WINDOW and _rolling_success(_records(run)) >= LEARNED_RATE,
            max(60.0, 900 - (time.monotonic() - t0)),
            procs,
            f"a rolling success rate >= {LEARNED_RATE} over {WINDOW} episodes",
            poll_s=2.0,
        )
        learned_at = _records(run)[-1]
        # phase 4: stop the robot; the actor (paused: stale state) resends until the learner holds everything
        assert procs.stop(sim) == 0
        _wait(
            lambda: len(_records(run)) == _stored(procs.logs[actor]),
            60,
            procs,
            "the learner to hold every episode the actor completed",
        )
        assert procs.stop(actor) == 0 and procs.stop(learner) == 0, procs.dump()
    finally:
        procs.kill_all()

    records = _records(run)
    n = len(records)
    assert n > before_kill + 2
    assert [r["index"] for r in records] == list(range(n)), "each completed episode exactly once, in order"
    env_steps = [r["env_steps"] for r in records]
    assert env_steps == sorted(env_steps) and env_steps[-1] == sum(r["steps"] for r in records)
    learner_store, actor_store = (
        EpisodeStore.open(run / "episodes"),
        EpisodeStore.open(tmp_path / "runs" / "robot_1_episodes"),
    )
    assert learner_store.n_episodes == actor_store.n_episodes == n
    assert [source_of(e)[1] for e in learner_store.iter_episodes()] == list(range(n))
    assert (run / "train_curve.png").stat().st_size > 10_000
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb")), "wandb offline files"
    print(
        f"learned: rolling success {_rolling_success(records[: records.index(learned_at) + 1]):.2f} at "
        f"episode {learned_at['index']}, {learned_at['env_steps']} env steps, {learned_at['updates']} updates, "
        f"learner wall {learned_at['wall_s']:.0f} s; killed at {before_kill} episodes"
    )


@pytest.mark.timeout(600)
def test_two_robots_with_two_actors_feed_one_learner_and_both_get_its_weights(tmp_path):
    _record_demos(tmp_path)
    run = tmp_path / "runs" / "learner"
    log = tmp_path / "up.log"
    cmd = [
        str(BIN / "robot-rl"),
        "up",
        "sim_two_robots_train",
        "--set",
        "sim_robot:real_time_factor:=2.0",
        "--set",
        "learner:demos:=demos",
        "--set",
        f"learner:out:={run}",
        "--set",
        "learner:min_steps_to_train:=300",
        "--set",
        "learner:publish_every_updates:=50",
        "--set",
        "learner:wandb_mode:=disabled",
    ]
    with open(log, "w") as out:
        up = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:

        def fed_and_updated() -> bool:
            per_actor = {}
            for r in _records(run):
                per_actor[r["actor_id"]] = per_actor.get(r["actor_id"], 0) + 1
            text = log.read_text()
            updated = {
                ns: any(int(v) > 0 for v in re.findall(rf"\[{ns}/actor\].*policy v(\d+) loaded", text))
                for ns in ("/robot_1", "/robot_2")
            }
            return min(per_actor.get("/robot_1/actor", 0), per_actor.get("/robot_2/actor", 0)) >= 2 and all(
                updated.values()
            )

        end = time.monotonic() + 420
        while time.monotonic() < end and up.poll() is None and not fed_and_updated():
            time.sleep(1.0)
        assert up.poll() is None and fed_and_updated(), log.read_text()[-6000:]
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log.read_text()[-4000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    text = log.read_text()
    assert (
        "[up] exit codes: {'/robot_1/sim_robot': 0, '/robot_1/actor': 0, '/robot_2/sim_robot': 0, "
        "'/robot_2/actor': 0, '/learner': 0}" in text
    )
    # each robot's episodes came from its own actor and store, numbered from 0 without gaps
    for ns in ("/robot_1", "/robot_2"):
        indices = [r["index"] for r in _records(run) if r["actor_id"] == f"{ns}/actor"]
        assert indices == list(range(len(indices)))
        assert EpisodeStore.open(tmp_path / "runs" / f"{ns.strip('/')}_episodes").n_episodes >= len(indices)
