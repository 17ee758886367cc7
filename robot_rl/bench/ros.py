"""`robot-rl bench ros`: the ROS 2 loop timed end to end, with real processes over real DDS.

Control phase (`seconds`): the shipped `sim_train` node table's sim robot (50 Hz physics, real time, two
128x128 cameras at 10 Hz) and actor (10 Hz, obs_mode pixels, a conv-encoder policy built here the way the
learner builds one for images -- `encoder` conv: a conv encoder trained through the critic; resnet10: the learner's
pixel recipe, a frozen ResNet-10 trunk -- use_sim_time, `timing_log` on). Meanwhile this process publishes the same
weights `broadcasts` times with rising versions, as the learner does (`push` delta: the full policy once on
/learner/policy before the control phase, then only its trainable tensors in fp16 on /learner/policy_delta,
`robot_rl.agents.policy_delta`; `push` full: the whole policy on /learner/policy each time, as before issue 25). Ingest phase: a learner node (shipped
parameters; conv encoder; training held off so only ingest is timed) gets `episodes` pixel episodes in one
burst on /learner/episodes -- the actor's stored episodes, cycled and re-numbered as one fake actor.

Figures (from the actor's timing log and this process's clocks):
  jitter       |wall period between consecutive running control ticks - 100 ms|   goal p99 <= 5 ms
               (periods ending within the control phase: the actor's first episode starts before it, while the
               nodes start and the full policy arrives)
  ... quiet    the same, leaving out periods ending between a broadcast's publish and BROADCAST_WINDOW_S after
               the actor put it in use (a 12 MB transfer and decode on 2 cores shows in the next tick or two)
  sim jitter   the same for the sim's /clock crossing each 100 ms of sim time, as this process hears it, broadcast
               windows left out (what the actor's sim-time timer can at best do)
  latency      command stamp - capture stamp of the oldest input used (sim clock, 20 ms resolution)
  tick->command  wall time from a tick's start to its command published (the actor's own share of latency)
    preempted  of that, the control thread runnable but not running (other threads had the cores; the actor's
               control_priority puts that thread on SCHED_FIFO to remove this: robot_rl.acting.realtime)
    blocked    of that, neither running nor runnable: waiting for the GIL another actor thread held, or I/O
  inference    Policy.act wall time in the actor                                     goal p99 <= 15 ms
  broadcast    publish here (wall) -> the actor has the weights in use (its wall time); the actor decodes them
               right after its next tick, so up to one control period of this is waiting by design
  ingest       interval between the learner's acks, steady state (the first episode builds the agent);
               episodes/s and MB/s over the burst after the first ack
DDS stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless set) in a private ROS_DOMAIN_ID
(so no real actor on domain 0 ever receives the bench's weights) unless `domain_id` is given.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from robot_rl.bench.ros_figures import control_figures, sim_jitter_ms  # noqa: F401  (sim_jitter_ms: for tests)
from robot_rl.bench.ros_results import (  # noqa: F401  (GOAL_*, format_ros_table: re-exported for the CLI)
    BROADCAST_WINDOW_S,
    GOAL_INFER_P99_MS,
    GOAL_JITTER_P99_MS,
    RosBenchConfig,
    RosBenchError,
    RosBenchResult,
    Stat,
    format_ros_table,
)
from robot_rl.bench.timing import available_cores, progress

SETUP = "sim_train"  # node table whose sim_robot, actor and learner entries are started
ROBOT_NS = "/robot_1"  # the table's robot namespace
FAKE_ACTOR = "/bench_ros/actor"  # actor id the ingest burst is sent as
BIN = Path(sys.executable).parent


# --- processes -----------------------------------------------------------------------------------
def child_env(domain_id: int) -> dict[str, str]:
    """Environment of every node: no ROS-wheel re-exec guard (ROS2.md), DDS on loopback, unbuffered logs."""
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env |= {"ROS_DOMAIN_ID": str(domain_id), "PYTHONUNBUFFERED": "1", "RCUTILS_LOGGING_BUFFERED_STREAM": "0"}
    return env


class _Nodes:
    """The table's nodes as processes, each logging to <work>/<name>.log."""

    def __init__(self, work: Path, env: dict[str, str], sets: list[str]) -> None:
        from robot_rl.nodes.table import load_table

        self.work, self.env, self.procs, self.logs = work, env, {}, {}
        table = load_table(SETUP).with_sets(sets)
        self.commands = {n.name: [str(BIN / n.executable), *n.ros_args()] for n in table.select(use_sim=True)}

    def start(self, name: str) -> None:
        self.logs[name] = self.work / f"{name}.log"
        with open(self.logs[name], "w") as out:
            self.procs[name] = subprocess.Popen(
                self.commands[name], cwd=self.work, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RosBenchError(
                    f"the {name} node exited with code {proc.returncode} (the end of its log is above)",
                    detail=f"--- {name} log ---\n{self.tail(name)}",
                )

    def tail(self, name: str, lines: int = 30) -> str:
        return "".join(self.logs[name].read_text().splitlines(True)[-lines:])

    def stop(self, name: str, timeout_s: float = 60.0) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.procs.clear()


def _wait(probe, nodes: _Nodes, predicate, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if probe.spin_until(predicate, 0.25):
            return
        nodes.check_alive()
    raise RosBenchError(
        f"timed out after {timeout_s:.0f} s waiting for {what} (the end of each node's log is above)",
        detail="\n".join(f"--- {n} log ---\n{nodes.tail(n)}" for n in nodes.procs),
    )


def read_timing_log(path: Path) -> tuple[list[dict], dict[int, float]]:
    """(episode records, {policy version: wall time it was put in use}) from an actor's timing_log."""
    episodes, loads = [], {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if record.get("event") == "episode":
            episodes.append(record)
        elif record.get("event") == "policy":
            loads.setdefault(int(record["version"]), float(record["wall_time"]))
    return episodes, loads


# --- the two phases ------------------------------------------------------------------------------
def _control_phase(
    cfg: RosBenchConfig, probe, nodes: _Nodes, pushes: tuple[bytes, bytes], timing_log: Path
) -> tuple[dict[int, float], tuple[float, float]]:
    """Sim + actor for cfg.seconds with cfg.broadcasts policy broadcasts; returns ({version: publish wall time},
    the phase's (start, end) wall times). pushes = (full policy, what each broadcast sends); with push delta the full
    one goes out first, untimed, and the phase starts once the actor has it in use."""
    from robot_rl.ros import protocol

    progress("[bench ros] starting sim_robot and actor")
    probe.watch_clock(f"{ROBOT_NS}/clock")
    nodes.start("sim_robot")
    nodes.start("actor")
    _wait(
        probe,
        nodes,
        lambda: probe.policy_subscribers() >= 1 and 0 in read_timing_log(timing_log)[1],
        cfg.startup_timeout_s,
        "the actor to come up with its local policy",
    )
    first = 1
    if cfg.push == "delta":  # what the learner published at its start: the base every delta applies to
        probe.publish_policy(protocol.policy_msg(pushes[0], first))
        _wait(
            probe,
            nodes,
            lambda: first in read_timing_log(timing_log)[1],
            cfg.startup_timeout_s,
            "the actor to load the full policy",
        )
        first += 1
    kind = protocol.POLICY_DELTA_KIND if cfg.push == "delta" else protocol.POLICY_KIND
    progress(f"[bench ros] actor up; control phase of {cfg.seconds:.0f} s with {cfg.broadcasts} weight broadcasts")
    t0, published, start_wall = time.monotonic(), {}, time.time()
    probe.watching_clock = True
    for i in range(cfg.broadcasts):
        version = i + first
        msg = protocol.policy_msg(pushes[1], version, kind)
        _wait(
            probe,
            nodes,
            lambda i=i: time.monotonic() >= t0 + (i + 0.5) * cfg.seconds / cfg.broadcasts,
            cfg.seconds,
            f"broadcast {version}",
        )
        published[version] = probe.publish_policy(msg, delta=cfg.push == "delta")
    _wait(probe, nodes, lambda: time.monotonic() >= t0 + cfg.seconds, cfg.seconds, "the end of the control phase")
    probe.watching_clock = False
    phase = (start_wall, time.time())
    if not any(r["episode"] is not None for r in read_timing_log(timing_log)[0]):
        progress("[bench ros] no episode completed yet; waiting for the first")
        _wait(
            probe,
            nodes,
            lambda: any(r["episode"] is not None for r in read_timing_log(timing_log)[0]),
            cfg.startup_timeout_s,
            "the actor's first completed episode",
        )
    nodes.stop("actor")
    nodes.stop("sim_robot")
    return published, phase


def _ingest_phase(cfg: RosBenchConfig, probe, nodes: _Nodes, store_path: Path, task_meta: dict) -> dict:
    """Learner node + a burst of cfg.episodes episodes; returns ingest figures."""
    from robot_rl import keys
    from robot_rl.data.store import EpisodeStore
    from robot_rl.ros import protocol

    store = EpisodeStore.open(store_path)
    msgs = []
    for i in range(cfg.episodes):
        episode = store.get_episode(i % store.n_episodes)
        meta = protocol.EpisodeMeta(FAKE_ACTOR, i, 1, bool(episode[keys.SUCCESS].any()), task_meta)
        msgs.append(protocol.episode_msg(episode, meta))
    episode_mb = float(np.mean([len(m.data) for m in msgs])) / 1e6
    progress(
        f"[bench ros] starting the learner; {cfg.episodes} episodes of {episode_mb:.1f} MB to send "
        f"(from {store.n_episodes} stored by the actor)"
    )
    nodes.start("learner")
    _wait(
        probe,
        nodes,
        lambda: probe.episode_subscribers() >= 1 and len(probe.acks) > 0,
        cfg.startup_timeout_s,
        "the learner to come up (subscribed to episodes, publishing acks)",
    )
    n_acks_before = len(probe.acks)
    t_sent = time.monotonic()
    for msg in msgs:
        probe.publish_episode(msg)
    timeout_s = cfg.startup_timeout_s + 10.0 * cfg.episodes
    _wait(probe, nodes, lambda: probe.acked(FAKE_ACTOR) >= cfg.episodes, timeout_s, f"{cfg.episodes} episodes acked")
    t_count: dict[int, float] = {}  # ack count -> first time heard
    for t, acks in probe.acks[n_acks_before:]:
        t_count.setdefault(acks.get(FAKE_ACTOR, 0), t)
    counts = sorted(c for c in t_count if c >= 1)
    steps = [(t_count[b] - t_count[a]) / (b - a) for a, b in zip(counts, counts[1:])]  # seconds per episode
    t_first, t_last = t_count[counts[0]], t_count[counts[-1]]
    rate = (counts[-1] - counts[0]) / (t_last - t_first) if counts[-1] > counts[0] else 1.0 / (t_first - t_sent)
    nodes.stop("learner")
    return {
        "ingest_ms": Stat.of(np.asarray(steps) * 1e3),
        "ingest_episodes_per_s": rate,
        "ingest_mb_per_s": rate * episode_mb,
        "first_ack_s": t_first - t_sent,
        "episodes_acked": counts[-1],
        "episodes_sent": cfg.episodes,
        "episode_mb": episode_mb,
    }


def _cpu_latency(actor_log: Path, asked_us: int) -> str:
    """What the actor's `cpu_latency_us` got, from its log line (robot_rl.acting.cpu_latency)."""
    if asked_us < 0:
        return "not requested"
    text = actor_log.read_text(errors="replace") if actor_log.is_file() else ""
    return f"held {asked_us} us" if f"cpu latency: holding {asked_us} us" in text else "not held (see the actor's log)"


def _make_policy(layout, path: Path, encoder: str) -> tuple[bytes, bytes]:
    """A pixels policy for the actor's layout with an agent config the learner trains images with (conv: --encoder
    conv; resnet10: its pixel recipe), saved to `path`; returns (its full payload, its delta payload)."""
    from robot_rl.agents.config import with_recipe
    from robot_rl.agents.policy import Policy
    from robot_rl.agents.policy_delta import base_id, to_delta
    from robot_rl.learner.config import LearnerConfig

    cfg = LearnerConfig(encoder="conv").agent() if encoder == "conv" else with_recipe(LearnerConfig().agent(), True)[0]
    policy = Policy(cfg, layout.obs_spec(), layout.action_dim)
    policy.save(path)
    return policy.to_bytes(), to_delta(policy, base_id(policy))


def run_ros_bench(cfg: RosBenchConfig) -> RosBenchResult:
    from robot_rl.acting.config import ActorConfig

    domain_id = cfg.domain_id if cfg.domain_id is not None else 50 + os.getpid() % 50
    env = child_env(domain_id)
    for key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID"):  # this process's own node, in the same graph
        os.environ[key] = env[key]
    work = Path(cfg.out) if cfg.out else Path(tempfile.mkdtemp(prefix="robot_rl_bench_ros_"))
    work.mkdir(parents=True, exist_ok=True)
    timing_log, store, policy_dir = work / "actor_timing.jsonl", work / "actor_episodes", work / "policy"
    for stale in (timing_log, store, work / "learner"):  # a rerun into the same --out starts clean
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)
    layout = ActorConfig(obs_mode="pixels").layout()
    load_avg = os.getloadavg()[0]
    progress(f"[bench ros] work dir {work}, ROS_DOMAIN_ID={domain_id}, load average {load_avg:.2f}")
    full, delta = _make_policy(layout, policy_dir, cfg.encoder)
    pushes = (full, delta if cfg.push == "delta" else full)
    sets = [
        "sim_robot:real_time_factor:=1.0",
        "sim_robot:camera_rate_hz:=10.0",
        "sim_robot:image_size:=128",
        "actor:obs_mode:=pixels",
        "actor:cameras:=[front, wrist]",
        "actor:image_size:=128",
        f"actor:policy_path:={policy_dir}",
        f"actor:timing_log:={timing_log}",
        f"actor:store:={store}",
        "actor:on_learner_lost:=continue",
        "actor:warmup:=hold",
        f"actor:threads:={cfg.threads}",
        f"actor:frame_threads:={cfg.frame_threads}",
        f"actor:control_priority:={cfg.control_priority}",
        f"actor:cpu_latency_us:={cfg.cpu_latency_us}",
        f"sim_robot:cpu_latency_us:={cfg.cpu_latency_us}",
        f"sim_robot:control_priority:={cfg.sim_priority}",
        *([] if cfg.wake else ["actor:wake_lead_ms:=0.0", "sim_robot:wake_lead_ms:=0.0"]),
        f"sim_robot:camera_thread:={str(cfg.sim_camera_thread).lower()}",
        f"learner:out:={work / 'learner'}",
        "learner:encoder:=conv",
        "learner:wandb_mode:=disabled",
        "learner:min_steps_to_train:=1000000000",  # no updates: the ingest figures are ingest alone
        f"learner:replay_capacity:={cfg.episodes * layout.max_episode_steps + 100}",
    ]
    nodes = _Nodes(work, env, sets)

    from robot_rl.nodes.bench_probe import BenchProbe

    probe = BenchProbe()
    try:
        published, phase = _control_phase(cfg, probe, nodes, pushes, timing_log)
        episodes, loads = read_timing_log(timing_log)
        ingest = _ingest_phase(cfg, probe, nodes, store, layout.task_meta())
    finally:
        nodes.kill_all()
        probe.close()
        if not cfg.out:
            shutil.rmtree(work, ignore_errors=True)
    received = {v: (loads[v] - t) * 1e3 for v, t in published.items() if v in loads}
    return RosBenchResult(
        **control_figures(episodes, loads, published, probe.clock, phase),
        broadcast_ms=Stat.of(list(received.values())),
        broadcasts_sent=len(published),
        broadcasts_received=len(received),
        policy_mb=len(pushes[1]) / 1e6,
        full_mb=len(full) / 1e6,
        push=cfg.push,
        encoder=cfg.encoder,
        seconds=cfg.seconds,
        cores=available_cores(),
        control_priority=cfg.control_priority,
        sim_priority=cfg.sim_priority,
        cpu_latency=_cpu_latency(work / "actor.log", cfg.cpu_latency_us),
        wake=cfg.wake,
        sim_camera_thread=cfg.sim_camera_thread,
        load_avg_1m=load_avg,
        **ingest,
    )
