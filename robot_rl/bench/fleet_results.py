"""`robot-rl bench fleet`'s configuration, the figures it reads from node logs and stores, and the printed table
(`robot_rl.bench.fleet` runs it). Kept apart from the orchestration so the figures can be tested on their own.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from robot_rl.bench.fleet_cpus import HOST_CPUS_DEFAULT, host_cpu_sets

DISCOVERY = ("multicast", "static")  # DDS discovery: SPDP multicast, or unicast to every host (ROS_STATIC_PEERS)
# A ROS 2 console line: "[INFO] [1712345678.123456789] [robot_1.actor]: message" (wall time, whatever the node clock)
LOG_RE = re.compile(r"^\[\w+\] \[(\d+\.\d+)\] \[[^\]]*\]: (.*)$")
PUBLISHED_RE = re.compile(r"published policy version (\d+) \((delta|full), ([\d.]+) MB\)")
LOADED_RE = re.compile(r"policy v(\d+) loaded from ")
STORED_RE = re.compile(r"episode (\d+) stored and sent")


@dataclass
class FleetBenchConfig:
    robots: int = 4  # robot hosts (sim robot + actor each), each in its own network namespace
    duration_s: float = 60.0  # wall seconds of the measured run, counted from every actor's first stored episode
    loss_pct: float = 0.0  # frames dropped on the bridge, % (both directions, every host)
    delay_ms: float = 0.0  # one-way delay on every host's egress (needs the kernel's netem qdisc)
    jitter_ms: float = 0.0  # ± around delay_ms (normal distribution)
    partition_s: float = 0.0  # robot_1's link down this long, starting a quarter into the run (0 = none)
    learner_down_s: float = 0.0  # the learner host killed (SIGKILL, namespace deleted) this long, half-way (0 = none)
    discovery: str = "multicast"  # multicast, or static: ROS_STATIC_PEERS with multicast off on every link
    real_time_factor: float = 3.0  # sim seconds per wall second of every sim robot
    fastdds_profile: str | None = (
        None  # Fast DDS XML profile for every process (launch/config/fastdds_lossy_network.xml)
    )
    sets: tuple[str, ...] = ()  # NODE:PARAM:=VALUE applied to the node table (as `robot-rl up --set`)
    drain_stall_s: float = 120.0  # after the sims stop: give up when the learner stored nothing new for this long
    drain_timeout_s: float = 900.0  # after the sims stop: longest wait, stall or not, for the learner to hold them all
    startup_timeout_s: float = 180.0  # longest wait for every actor's first stored episode
    out: str | None = None  # keep logs and stores here; None = a temporary dir, removed afterwards
    # CPUs of each host's processes (robot_rl.bench.fleet_cpus): auto (learner the first half, robots the rest),
    # none, or e.g. "learner=0,robots=1"
    host_cpus: str = HOST_CPUS_DEFAULT

    def __post_init__(self) -> None:
        if not 1 <= self.robots <= 50:
            raise ValueError(f"robots must be 1 to 50, got {self.robots}")
        if not 0 <= self.loss_pct < 100:
            raise ValueError(f"loss must be 0 to <100 %, got {self.loss_pct}")
        for name in ("duration_s", "delay_ms", "jitter_ms", "partition_s", "learner_down_s", "drain_stall_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.discovery not in DISCOVERY:
            raise ValueError(f"discovery must be one of {list(DISCOVERY)}, got {self.discovery!r}")
        if self.fastdds_profile is not None and not Path(self.fastdds_profile).is_file():
            raise ValueError(
                f"no Fast DDS profile {self.fastdds_profile!r} (e.g. launch/config/fastdds_lossy_network.xml)"
            )
        if self.real_time_factor <= 0:
            raise ValueError(f"real_time_factor must be > 0, got {self.real_time_factor}")
        host_cpu_sets(self.host_cpus, "learner", [f"robot_{i}" for i in range(1, self.robots + 1)])

    def cpu_sets(self, learner: str, robots: list[str]) -> dict[str, list[int]]:
        """host -> its CPUs ({}: not pinned), from `host_cpus` on the CPUs this process may use."""
        return host_cpu_sets(self.host_cpus, learner, robots)


@dataclass
class Delivery:
    """One actor: what it completed (its own store) against what the learner stored from it."""

    actor_id: str
    completed: int  # episodes in the actor's store
    delivered: int  # episodes from this actor in the learner's store
    duplicates: int  # learner-stored indices seen more than once
    missing: int  # indices < completed that the learner does not hold

    @property
    def exactly_once(self) -> bool:
        return self.delivered == self.completed and self.duplicates == 0 and self.missing == 0


@dataclass
class FleetResult:
    config: dict
    run_s: float  # the measured window
    episodes_in: int  # episodes the learner stored in the window
    rx_mb: float  # bytes into the learner host's link in the window, MB
    updates: int  # learner updates done in the window
    update_s: float  # the learner's own seconds those updates took (updates_done)
    deliveries: list[Delivery]
    push_latency_ms: dict[str, list[float]]  # actor id -> publish -> loaded, per policy version both saw
    pushes: int  # policy versions the learner published
    lost_learner_episodes: int = 0  # episodes the actors completed while the learner host was gone
    # actor id -> phase ("healthy", "lossy", "partitioned", "learner lost") -> its control ticks' figures (tick_jitter)
    tick_jitter: dict[str, dict[str, dict]] = field(default_factory=dict)
    host_cpus: dict[str, list[int]] = field(default_factory=dict)  # host -> CPUs its processes ran on (read back)
    learner_cpu_s: float | None = None  # CPU seconds the learner process used in the window (None: restarted)
    window_updates: int | None = None  # updates in the window, from its publishes (None: none yet, or restarted)
    load_avg: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average at the window's start, end
    window_wall: tuple[float, float] = (0.0, 0.0)  # the window's start and end, wall clock (time.time)
    notes: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return all(d.exactly_once for d in self.deliveries)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["exactly_once"] = self.exactly_once
        out["episodes_per_s"] = self.episodes_in / self.run_s if self.run_s else 0.0
        out["rx_mb_per_s"] = self.rx_mb / self.run_s if self.run_s else 0.0
        out["updates_per_s"] = self.updates / self.update_s if self.update_s else 0.0
        # the learner's capacity whatever share of a core it got: updates per CPU second it spent (every thread)
        out["updates_per_cpu_s"] = (self.window_updates or 0) / self.learner_cpu_s if self.learner_cpu_s else None
        out["learner_cpu_share"] = self.learner_cpu_s / self.run_s if self.learner_cpu_s and self.run_s else None
        return out


def log_events(path: Path, pattern: re.Pattern) -> list[tuple[float, re.Match]]:
    """(wall time, match) of every console line of `path` whose message matches `pattern`."""
    out = []
    for line in path.read_text(errors="replace").splitlines() if path.is_file() else []:
        m = LOG_RE.match(line.strip())
        if m and (hit := pattern.search(m.group(2))):
            out.append((float(m.group(1)), hit))
    return out


def push_latencies_ms(learner_logs: list[Path], actor_log: Path) -> list[float]:
    """Per publish of a version the actor then loaded: its first load after that publish minus the publish time.

    A restarted learner republishes the version of its checkpoint, so versions repeat: each load is matched with
    the latest publish of its version before it, and each publish counts once."""
    published = sorted((t, int(m.group(1))) for log in learner_logs for t, m in log_events(log, PUBLISHED_RE))
    out, seen = [], set()
    for t_load, m in log_events(actor_log, LOADED_RE):
        version = int(m.group(1))
        before = [t for t, v in published if v == version and t <= t_load]
        if before and (version, before[-1]) not in seen:
            seen.add((version, before[-1]))
            out.append(1e3 * (t_load - before[-1]))
    return out


def window_updates(learner_logs: list[Path], t0_wall: float, t1_wall: float) -> int | None:
    """Updates the learner did between two wall times: its policy versions (= its update step) published last before
    each, from its log (one publish per `publish_every_updates`, or per chunk of updates if that is longer). Before its
    first publish (version 0, when its agent is built) a fresh learner has done none. None with no publish by
    `t1_wall`."""
    published = sorted((t, int(m.group(1))) for log in learner_logs for t, m in log_events(log, PUBLISHED_RE))
    before = [v for t, v in published if t <= t0_wall]
    upto = [v for t, v in published if t <= t1_wall]
    return upto[-1] - (before[-1] if before else 0) if upto else None


def updates_done(samples: list[tuple[int | None, float | None]]) -> tuple[int, float]:
    """(updates, learner seconds they took), from the learner's (update counter, wall seconds) sampled in order (the
    episode log's `updates` and `wall_s`, one per arriving episode; the first the last sample before the window).

    Every rise of the counter counts, with the seconds it took. A fall is a learner restarted from an older
    checkpoint: that interval is skipped (the updates between the checkpoint and the first episode after the
    restart, and between the last episode and the kill, go uncounted). A line rebuilt after a crash has neither
    (None) and is skipped. Seconds are the learner's own (summed over restarts): the rate is its rate while it ran,
    not diluted by the time it was down nor cut off by the last episode's arrival before the window ended."""
    known = [(u, w) for u, w in samples if u is not None and w is not None]
    rises = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(known, known[1:]) if b[0] >= a[0] and b[1] >= a[1]]
    return sum(n for n, _ in rises), float(sum(dt for _, dt in rises))


def tick_jitter(timing_log: Path, t0_wall: float, t1_wall: float, phases: list[tuple[float, float, str]],
                background: str) -> dict[str, dict]:  # fmt: skip
    """Control-tick figures of one actor per network phase, from its timing log (robot_rl.acting.timing): the wall
    periods of its ticks ending in [t0_wall, t1_wall], each in the first of `phases` (start, end, label) that holds
    its end, else in `background` ("healthy" or "lossy"). Jitter is a period's distance from the actor's median
    period over the whole window (a sim at N x real time ticks every nominal/N ms, if the machine keeps up)."""
    period_ms, end_wall = [], []
    for line in timing_log.read_text().splitlines() if timing_log.is_file() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by the actor's exit
        if record.get("event") == "episode":
            period_ms += record["period_ms"]
            end_wall += record["period_end_wall"]
    period, end = np.asarray(period_ms), np.asarray(end_wall)
    inside = (end >= t0_wall) & (end <= t1_wall)
    period, end = period[inside], end[inside]
    if not len(period):
        return {}
    jitter = np.abs(period - np.median(period))
    label = np.full(len(end), background, dtype=object)
    for start, stop, name in reversed(phases):  # the first phase listed wins where phases overlap
        label[(end >= start) & (end < stop)] = name
    out = {}
    for name in dict.fromkeys(label):
        sel = label == name
        out[name] = {
            "ticks": int(sel.sum()),
            "period_p50_ms": round(float(np.median(period[sel])), 2),
            "jitter_p50_ms": round(float(np.median(jitter[sel])), 2),
            "jitter_p99_ms": round(float(np.percentile(jitter[sel], 99)), 2),
        }
    return out


def stored_count(actor_log: Path) -> int:
    """Episodes the actor has completed and stored, from its log (one past the highest index logged)."""
    found = [int(m.group(1)) for _, m in log_events(actor_log, STORED_RE)]
    return max(found) + 1 if found else 0


def held_per_actor(learner_dir: Path) -> dict[str, int]:
    """actor id -> episodes the learner has stored from it, from its episode log."""
    from robot_rl.learner import episode_log

    counts: dict[str, int] = {}
    for r in episode_log.read(learner_dir):
        counts[r["actor_id"]] = counts.get(r["actor_id"], 0) + 1
    return counts


def deliveries(learner_store: Path, actor_stores: dict[str, Path]) -> list[Delivery]:
    """Exactly-once check: each actor's stored episode ids against the (actor id, index) the learner stored."""
    from robot_rl.data.store import EpisodeStore  # zarr: not when the CLI parser is built
    from robot_rl.learner.ledger import source_of

    indices: dict[str, list[int]] = {a: [] for a in actor_stores}
    if (learner_store / "meta").exists() or learner_store.is_dir():
        for episode in EpisodeStore.open(learner_store).iter_episodes():
            actor, index = source_of(episode)
            indices.setdefault(actor, []).append(index)
    out = []
    for actor, store in actor_stores.items():
        completed = EpisodeStore.open(store).n_episodes if store.is_dir() else 0
        got = indices.get(actor, [])
        out.append(
            Delivery(
                actor,
                completed,
                len(got),
                duplicates=len(got) - len(set(got)),
                missing=len(set(range(completed)) - set(got)),
            )
        )
    return out


def format_fleet_table(r: FleetResult) -> str:
    d = r.as_dict()
    c = r.config
    lines = [
        f"fleet: {c['robots']} robots, loss {c['loss_pct']:g} %, delay {c['delay_ms']:g}±{c['jitter_ms']:g} ms, "
        f"partition {c['partition_s']:g} s, learner down {c['learner_down_s']:g} s, discovery {c['discovery']}, "
        f"Fast DDS profile {c['fastdds_profile'] or 'default (UDPv4)'}",
        f"  window                 {r.run_s:8.1f} s (load average {r.load_avg[0]:.1f} at its start, "
        f"{r.load_avg[1]:.1f} at its end)",
        f"  host CPUs              {_cpu_sets_line(r.host_cpus)}",
        f"  episodes into learner  {d['episodes_per_s']:8.2f} /s  ({r.episodes_in} episodes)",
        f"  MB into learner        {d['rx_mb_per_s']:8.3f} MB/s ({r.rx_mb:.1f} MB on its link)",
        f"  learner updates        {d['updates_per_s']:8.1f} /s  ({r.updates} updates in {r.update_s:.0f} learner s)",
        "  learner CPU            "
        + (
            "restarted: not measured"
            if r.learner_cpu_s is None
            else f"{r.learner_cpu_s:8.1f} s in the window "
            f"({d['learner_cpu_share']:.0%} of a core), {d['updates_per_cpu_s'] or 0:.0f} updates per CPU s "
            f"({r.window_updates} updates)"
        ),  # fmt: skip
        f"  policy pushes          {r.pushes:8d}",
    ]
    for actor, lat in r.push_latency_ms.items():
        stat = f"median {np.median(lat):7.0f} ms, max {max(lat):7.0f} ms, {len(lat)} versions" if lat else "none"
        lines.append(f"  push->loaded {actor:<11s} {stat}")
    for dv in r.deliveries:
        verdict = "exactly once" if dv.exactly_once else "NOT exactly once"
        lines.append(
            f"  delivery {dv.actor_id:<15s} completed {dv.completed:4d}, learner holds {dv.delivered:4d}, "
            f"duplicates {dv.duplicates}, missing {dv.missing}: {verdict}"
        )
    for actor, by_phase in r.tick_jitter.items():
        for phase, t in by_phase.items():
            lines.append(
                f"  ticks {actor:<11s} {phase:<12s} period p50 {t['period_p50_ms']:6.1f} ms, jitter p50 "
                f"{t['jitter_p50_ms']:5.1f} ms, p99 {t['jitter_p99_ms']:6.1f} ms ({t['ticks']} ticks)"
            )
    if c["learner_down_s"]:
        lines.append(f"  episodes completed while the learner host was gone: {r.lost_learner_episodes}")
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)


def _cpu_sets_line(sets: dict[str, list[int]]) -> str:
    """ "learner 0; robot_1, robot_2 1" (hosts with the same CPUs together), or "not pinned"."""
    if not sets:
        return "not pinned (every process on every CPU)"
    by_cpus: dict[str, list[str]] = {}
    for host, cpus in sets.items():
        by_cpus.setdefault(",".join(map(str, cpus)) or "?", []).append(host)
    return "; ".join(f"{', '.join(hosts)} {cpus}" for cpus, hosts in by_cpus.items())
