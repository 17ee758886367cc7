"""`robot-rl bench fleet`: robots and the learner on separate (virtual) hosts, over a lossy network, measured.

Each robot host runs the shipped `sim_train` table's sim robot and actor (its namespace, seed, store and clock remap
made per robot, as `sim_two_robots_train` does); the learner host runs its learner; every host is its own network
namespace on one bridge (`robot_rl.bench.fleet_net`), so DDS discovery and traffic cross a real (virtual) network.
Separate hosts share no memory: every process runs with FASTDDS_BUILTIN_TRANSPORTS=UDPv4 (no shared-memory
transport), so every byte between hosts crosses the bridge and its faults. Separate hosts share no CPU either:
each host's processes are pinned to its CPU set (`robot_rl.bench.fleet_cpus`, `host_cpus`; by default the learner
gets the first half of the CPUs and the robots the rest), and the bench itself stays on the robots' CPUs.

    start  learner host, then robot hosts; wait until every actor has stored an episode
    run    duration_s: robot_1's link down for partition_s from a quarter in; the learner host killed (SIGKILL,
           namespace deleted) for learner_down_s half-way, then made again and its learner restarted (it resumes
           from its checkpoint and store)
    drain  the sims stop (SIGINT); the actors, their robot silent, keep resending until the learner holds every
           episode they completed: as long as it keeps storing them (a learner slower than the robots works off
           its backlog), until it stored nothing new for drain_stall_s or drain_timeout_s passed
    stop   actors and learner SIGINT; the network removed -- always, also on Ctrl-C or a failure

Figures (robot_rl.bench.fleet_results): episodes and MB into the learner per second (MB: its link's rx bytes),
learner updates per second (every rise of its update counter, over restarts), weight-push latency per robot (the
learner's "published policy version V" log line to the actor's "policy vV loaded"), exactly-once delivery per actor
(its store's episode ids against the (actor id, index) the learner stored), and each actor's control-tick period and
jitter per network phase (healthy or lossy, partitioned, learner lost), from its timing log; the CPUs each host
ran on (read back from its threads), the learner's CPU seconds in the window and its updates per CPU second (its
capacity, whatever share of its CPUs other work on the machine left it), the load average.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robot_rl.bench.fleet_cpus import allowed_cpus, cpu_seconds, shares_cpus, taskset_prefix
from robot_rl.bench.fleet_net import FleetNet
from robot_rl.bench.fleet_results import (
    PUBLISHED_RE,
    FleetBenchConfig,
    FleetResult,
    deliveries,
    held_per_actor,
    log_events,
    push_latencies_ms,
    stored_count,
    tick_jitter,
    updates_done,
    window_updates,
)
from robot_rl.bench.timing import progress
from robot_rl.learner import episode_log
from robot_rl.nodes.table import NodeEntry, load_table

SETUP = "sim_train"  # node table whose sim_robot, actor and learner entries each host runs
BIN = Path(sys.executable).parent
LEARNER = "learner"
DOMAIN_ID = "42"  # any: the namespaces are private


class FleetBenchError(RuntimeError):
    """A node died or never came up; the message is one line, `detail` the end of the node logs."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def robot_hosts(n: int) -> list[str]:
    return [f"robot_{i}" for i in range(1, n + 1)]


def host_commands(
    cfg: FleetBenchConfig, work: Path, cpus: dict[str, list[int]] | None = None
) -> dict[str, dict[str, list[str]]]:
    """host -> {node fqn: command line}: the table's entries, one sim robot + actor pair per robot host.

    Robot hosts pinned to shared CPUs (`cpus`, robot_rl.bench.fleet_cpus) get actors without real-time priority
    unless `cfg.sets` gives one: one robot's SCHED_FIFO ticks would run ahead of another robot host's sim on those
    CPUs, which separate machines cannot do."""
    shared = shares_cpus(cpus or {}, robot_hosts(cfg.robots))
    table = load_table(SETUP).with_sets(
        [f"sim_robot:real_time_factor:={cfg.real_time_factor}", f"learner:out:={work / 'learner'}"]
        + (["actor:control_priority:=0"] if shared else [])
        + list(cfg.sets)  # after: the user's sets win
    )
    by_name = {n.name: n for n in table.select(use_sim=True)}

    def line(n: NodeEntry) -> list[str]:
        return [str(BIN / n.executable), *n.ros_args()]

    out = {LEARNER: {by_name["learner"].fqn: line(by_name["learner"])}}
    for i, host in enumerate(robot_hosts(cfg.robots), start=1):
        ns, remaps = f"/{host}", ((("/clock", f"/{host}/clock"),))
        sim = dataclasses.replace(
            by_name["sim_robot"], namespace=ns, remaps=remaps, overrides=by_name["sim_robot"].overrides + (("seed", i),)
        )
        actor = dataclasses.replace(
            by_name["actor"],
            namespace=ns,
            remaps=remaps,
            overrides=by_name["actor"].overrides
            + (("seed", i), ("store", str(work / f"{host}_episodes")), ("timing_log", str(timing_log(work, host)))),
        )
        out[host] = {sim.fqn: line(sim), actor.fqn: line(actor)}
    return out


def timing_log(work: Path, host: str) -> Path:
    """The robot host's actor's per-tick timings (JSON lines, robot_rl.acting.timing)."""
    return work / f"{host}_timing.jsonl"


class _Fleet:
    """The hosts' processes, each logging to its own file under `work`."""

    def __init__(self, cfg: FleetBenchConfig, net: FleetNet, work: Path, cpus: dict[str, list[int]]) -> None:
        self.cfg, self.net, self.work = cfg, net, work
        self.commands = host_commands(cfg, work, cpus)
        self.cpus = cpus  # host -> its CPUs ({}: not pinned)
        if self.cpus and shutil.which("taskset") is None:
            raise FleetBenchError("host CPU sets need `taskset` (util-linux); or run with --host-cpus none")
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, list[Path]] = {}
        self.env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
        self.env |= {
            "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
            "ROS_DOMAIN_ID": DOMAIN_ID,
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
            "PYTHONUNBUFFERED": "1",
            "RCUTILS_LOGGING_BUFFERED_STREAM": "0",
        }
        if cfg.fastdds_profile:  # its transports replace the builtin ones
            del self.env["FASTDDS_BUILTIN_TRANSPORTS"]
            self.env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(Path(cfg.fastdds_profile).resolve())
        if cfg.discovery == "static":
            self.env["ROS_STATIC_PEERS"] = ";".join(net.address(h) for h in net.hosts)

    def start_host(self, host: str) -> None:
        for fqn, cmd in self.commands[host].items():
            log = self.work / f"{fqn.strip('/').replace('/', '_')}_{len(self.logs.get(fqn, [])) + 1}.log"
            with open(log, "w") as out:
                self.procs[fqn] = subprocess.Popen(
                    taskset_prefix(self.cpus.get(host)) + self.net.exec_prefix(host) + cmd,
                    cwd=self.work,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the bench only, which stops the nodes
                )
            self.logs.setdefault(fqn, []).append(log)

    def forget_host(self, host: str) -> None:
        for fqn in self.commands[host]:
            proc = self.procs.pop(fqn, None)
            if proc is not None:
                proc.wait()  # killed with the namespace (SIGKILL): reap it

    def actor_log(self, host: str) -> Path:
        return self.logs[f"/{host}/actor"][-1]

    def host_cpus(self) -> dict[str, list[int]]:
        """host -> the CPUs its running processes' threads may use, read back from /proc ({} if not pinned)."""
        if not self.cpus:
            return {}
        out: dict[str, set[int]] = {}
        for host, fqns in self.commands.items():
            for fqn in fqns:
                if fqn in self.procs:
                    out.setdefault(host, set()).update(allowed_cpus(self.procs[fqn].pid))
        return {h: sorted(c) for h, c in out.items()}

    def learner_cpu_s(self) -> float | None:
        """CPU seconds the learner process has used so far (None when it is not running)."""
        proc = self.procs.get(f"/{LEARNER}")
        return None if proc is None or proc.poll() is not None else cpu_seconds(proc.pid)

    def check_alive(self) -> None:
        dead = {f: p.returncode for f, p in self.procs.items() if p.poll() is not None}
        if not self.net.delayer_alive():
            raise FleetBenchError(f"the packet delayer (robot_rl.bench.fleet_delay) died (logs in {self.work})")
        if dead:
            raise FleetBenchError(f"nodes exited early: {dead} (logs in {self.work})", self.dump())

    def stop(self, fqns: list[str], timeout_s: float = 30.0) -> dict[str, int]:
        for fqn in fqns:
            if self.procs[fqn].poll() is None:
                self.procs[fqn].send_signal(signal.SIGINT)
        codes = {}
        for fqn in fqns:
            try:
                codes[fqn] = self.procs[fqn].wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.procs[fqn].kill()
                codes[fqn] = self.procs[fqn].wait()
            del self.procs[fqn]
        return codes

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def dump(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {log.name} (tail) ---\n{''.join(log.read_text(errors='replace').splitlines(True)[-lines:])}"
            for logs in self.logs.values()
            for log in logs
        )


def _wait(predicate, timeout_s: float, fleet: _Fleet, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        fleet.check_alive()
        if time.monotonic() > end:
            raise FleetBenchError(f"timed out after {timeout_s:.0f} s waiting for {what} (logs in {fleet.work})",
                                  fleet.dump())  # fmt: skip
        time.sleep(0.5)


def _update_counts(work: Path, start: int) -> list[tuple[int | None, float | None]]:
    """The learner's (update counter, wall seconds) when the window opened (the last known before episode `start`),
    then at each episode it stored since."""
    samples = [(r.get("updates"), r.get("wall_s")) for r in episode_log.read(work / "learner")]
    return [x for x in samples[:start] if None not in x][-1:] + samples[start:]


def run_fleet(cfg: FleetBenchConfig) -> FleetResult:
    """Build the network, run the fleet through its faults, drain, stop, measure; the network is always removed."""
    work = Path(cfg.out) if cfg.out else Path(tempfile.mkdtemp(prefix="robot_rl_fleet_"))
    work.mkdir(parents=True, exist_ok=True)
    robots = robot_hosts(cfg.robots)
    net = FleetNet([LEARNER, *robots], multicast=cfg.discovery == "multicast", loss_pct=cfg.loss_pct)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    fleet, affinity = None, os.sched_getaffinity(0)
    try:
        cpus = cfg.cpu_sets(LEARNER, robots)  # before the bench pins itself: from every CPU it may use
        robot_cpus = {c for h, cpu_set in cpus.items() if h != LEARNER for c in cpu_set}
        if robot_cpus:  # the bench and the packet delayer (the network) stay off the learner's CPUs
            os.sched_setaffinity(0, robot_cpus)
        net.up()
        if cfg.delay_ms or cfg.jitter_ms:
            net.set_delay(cfg.delay_ms, cfg.jitter_ms)
        fleet = _Fleet(cfg, net, work, cpus)
        progress(f"fleet: {len(net.hosts)} hosts on bridge {net.bridge} ({', '.join(net.hosts)}); logs in {work}")
        for host in net.hosts:
            fleet.start_host(host)
        _wait(lambda: all(stored_count(fleet.actor_log(h)) >= 1 for h in robots), cfg.startup_timeout_s, fleet,
              "every actor's first stored episode")  # fmt: skip
        return _measure(cfg, net, fleet, robots, work)
    finally:
        if fleet is not None:
            fleet.kill_all()
        net.down()
        os.sched_setaffinity(0, affinity)
        signal.signal(signal.SIGTERM, previous)
        if cfg.out is None:
            shutil.rmtree(work, ignore_errors=True)


@dataclasses.dataclass
class _Window:
    """What the measured run saw, before the drain."""

    run_s: float  # its wall seconds
    wall: tuple[float, float]  # its start and end, wall clock (time.time)
    rx_mb: float  # into the learner host's link (over both of its lives)
    episodes0: int  # episodes the learner held when it began
    lost_learner_episodes: int  # episodes the actors completed while the learner host was gone
    marks: dict[str, float]  # event -> wall time it happened ("partition", "heal", "kill learner", ...)
    learner_cpu_s: float | None  # CPU seconds the learner used in the window (None: it was restarted)
    load_avg: tuple[float, float]  # 1-minute load average at the start and the end

    def phases(self, host: str, robots: list[str]) -> list[tuple[float, float, str]]:
        """(wall from, to, label) of the faults `host` went through (robot_1 alone is partitioned)."""
        m, out = self.marks, []
        if "partition" in m and host == robots[0]:
            out.append((m["partition"], m.get("heal", self.wall[1]), "partitioned"))
        if "kill learner" in m:
            out.append((m["kill learner"], m.get("restart learner", self.wall[1]), "learner lost"))
        return out


def _run_window(cfg: FleetBenchConfig, net: FleetNet, fleet: _Fleet, robots: list[str], work: Path) -> _Window:
    """The measured run with its faults at their times: robot_1's partition from a quarter in, the learner host's
    loss half-way."""
    t0, t0_wall, rx0 = time.monotonic(), time.time(), net.rx_bytes(LEARNER)
    cpu0, load0 = fleet.learner_cpu_s(), os.getloadavg()[0]
    episodes0 = len(episode_log.read(work / "learner"))
    rx_before_restart, lost_learner_episodes, marks = 0, 0, {}
    events = []  # (at s, what)
    if cfg.partition_s:
        events += [(cfg.duration_s / 4, "partition"), (cfg.duration_s / 4 + cfg.partition_s, "heal")]
    if cfg.learner_down_s:
        events += [(cfg.duration_s / 2, "kill learner"), (cfg.duration_s / 2 + cfg.learner_down_s, "restart learner")]
    end_s = max([cfg.duration_s] + [at + 5.0 for at, _ in events])
    stored_at_kill = 0
    for at, what in sorted(events) + [(end_s, "end")]:
        while time.monotonic() - t0 < at:
            fleet.check_alive()
            time.sleep(0.5)
        progress(f"fleet: t={time.monotonic() - t0:5.1f} s: {what}")
        marks[what] = time.time()
        if what in ("partition", "heal"):
            net.set_link(robots[0], up=what == "heal")
        elif what == "kill learner":
            rx_before_restart = net.rx_bytes(LEARNER) - rx0
            net.kill_host(LEARNER)
            fleet.forget_host(LEARNER)
            stored_at_kill = sum(stored_count(fleet.actor_log(h)) for h in robots)
        elif what == "restart learner":
            lost_learner_episodes = sum(stored_count(fleet.actor_log(h)) for h in robots) - stored_at_kill
            net.add_host(LEARNER)
            if net.loss_pct:
                net.set_loss(net.loss_pct)
            if cfg.delay_ms or cfg.jitter_ms:
                net.set_delay(cfg.delay_ms, cfg.jitter_ms)
            rx0 = 0  # a new link: its counter starts at 0
            fleet.start_host(LEARNER)
    rx_mb = (rx_before_restart + net.rx_bytes(LEARNER) - rx0) / 1e6
    cpu1 = fleet.learner_cpu_s()
    cpu_s = None if cpu0 is None or cpu1 is None or "kill learner" in marks else cpu1 - cpu0
    return _Window(time.monotonic() - t0, (t0_wall, time.time()), rx_mb, episodes0, lost_learner_episodes, marks,
                   cpu_s, (load0, os.getloadavg()[0]))  # fmt: skip


def _drain(cfg: FleetBenchConfig, fleet: _Fleet, robots: list[str], work: Path) -> list[str]:
    """The sims stop; the actors resend until the learner holds everything they completed, for as long as it keeps
    storing (`drain_stall_s` without a new episode ends it, `drain_timeout_s` in all); all stop. Notes."""
    fleet.stop([f"/{h}/sim_robot" for h in robots])
    completed = {f"/{h}/actor": stored_count(fleet.actor_log(h)) for h in robots}

    drain_t0, notes = time.monotonic(), []
    start = last = sum(held_per_actor(work / "learner").values())
    last_t = drain_t0
    while True:
        counts = held_per_actor(work / "learner")
        if all(counts.get(a, 0) >= n for a, n in completed.items()):
            break
        fleet.check_alive()
        now, total = time.monotonic(), sum(counts.values())
        if total > last:
            last, last_t = total, now
        if now - last_t > cfg.drain_stall_s or now - drain_t0 > cfg.drain_timeout_s:
            why = f"nothing new for {cfg.drain_stall_s:.0f} s" if now - last_t > cfg.drain_stall_s else "its limit"
            notes.append(f"the drain ended ({why}) with {total} of {sum(completed.values())} "
                         f"completed episodes held")  # fmt: skip
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - drain_t0
    stored = sum(held_per_actor(work / "learner").values()) - start
    notes.append(f"drain took {drain_s:.1f} s" + (f", {stored} episodes stored in it ({drain_s / stored:.1f} s each)"
                                                  if stored else ""))  # fmt: skip
    codes = fleet.stop([f"/{h}/actor" for h in robots] + ["/learner"])
    if any(codes.values()):
        notes.append(f"exit codes {codes}")
    return notes


def _measure(cfg: FleetBenchConfig, net: FleetNet, fleet: _Fleet, robots: list[str], work: Path) -> FleetResult:
    """The run (with its faults), the drain and the stop; then the figures."""
    host_cpus = fleet.host_cpus()  # read back while every node runs
    window = _run_window(cfg, net, fleet, robots, work)
    episodes_in = len(episode_log.read(work / "learner")) - window.episodes0
    updates, update_s = updates_done(_update_counts(work, window.episodes0))
    notes = _drain(cfg, fleet, robots, work)
    learner_logs = fleet.logs["/learner"]
    background = "lossy" if cfg.loss_pct or cfg.delay_ms or cfg.jitter_ms else "healthy"
    return FleetResult(
        config=dataclasses.asdict(cfg),
        run_s=window.run_s,
        episodes_in=episodes_in,
        rx_mb=window.rx_mb,
        updates=updates,
        update_s=update_s,
        deliveries=deliveries(work / "learner" / "episodes", {f"/{h}/actor": work / f"{h}_episodes" for h in robots}),
        push_latency_ms={f"/{h}/actor": push_latencies_ms(learner_logs, fleet.actor_log(h)) for h in robots},
        pushes=sum(len(log_events(log, PUBLISHED_RE)) for log in learner_logs),
        lost_learner_episodes=window.lost_learner_episodes,
        tick_jitter={
            f"/{h}/actor": tick_jitter(timing_log(work, h), *window.wall, window.phases(h, robots), background)
            for h in robots
        },
        host_cpus=host_cpus,
        learner_cpu_s=window.learner_cpu_s,
        window_updates=None if "kill learner" in window.marks else window_updates(learner_logs, *window.wall),
        load_avg=window.load_avg,
        window_wall=window.wall,
        notes=notes,
    )
