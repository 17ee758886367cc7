"""`robot-rl bench ros`'s goals, configuration, result types and the printed table (`robot_rl.bench.ros` runs it).

Kept apart from the orchestration so the CLI can read the goals and validate options without importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

GOAL_JITTER_P99_MS = 5.0  # issue 4: control-period jitter p99
GOAL_INFER_P99_MS = 15.0  # issue 4: policy inference p99 on CPU
BROADCAST_WINDOW_S = 0.3  # periods ending this long after a weights load count as disturbed by the broadcast


class RosBenchError(RuntimeError):
    """A node died or never came up. The message is one line (`robot-rl` prints it as `robot-rl: error: ...`);
    `detail` holds the end of the node logs, which `robot-rl bench ros` prints before it (without --out the logs
    are removed with the work dir)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class RosBenchConfig:
    seconds: float = 40.0  # wall seconds of the control phase, counted from when the actor is up
    broadcasts: int = 5  # policy broadcasts, spread evenly over the control phase
    encoder: str = "conv"  # the pixels policy: conv (all of it trains) or resnet10 (the learner's recipe, frozen trunk)
    push: str = "delta"  # delta: full policy once, then trainable tensors in fp16; full: the whole policy each time
    episodes: int = 20  # pixel episodes sent to the learner node in one burst
    threads: int = 1  # the actor's torch CPU threads
    frame_threads: int = 2  # the actor's frame_threads: a tick's camera frames through the frozen trunk at once
    control_priority: int = 50  # the actor's control_priority: SCHED_FIFO priority of its tick's thread; 0 = off
    sim_priority: int = 60  # the sim robot's control_priority: SCHED_FIFO priority of a physics period; 0 = off
    cpu_latency_us: int = 0  # the actor's cpu_latency_us (robot_rl.acting.cpu_latency); negative = not held
    wake: bool = True  # the actor's and the sim's wake windows at their defaults; False: wake_lead_ms 0 for both
    sim_camera_thread: bool = True  # the sim draws its cameras on a thread of their own; False: inline in the period
    out: str | None = None  # keep logs, stores and the policy here; None = a temporary dir, removed afterwards
    domain_id: int | None = None  # ROS_DOMAIN_ID of every process; None = a private one derived from the pid
    startup_timeout_s: float = 120.0  # longest wait for a node to come up or a figure to arrive

    def __post_init__(self) -> None:
        for name, least in (("seconds", 5), ("broadcasts", 1), ("episodes", 1), ("threads", 1), ("frame_threads", 1)):
            if not getattr(self, name) >= least:  # `not >=`: a NaN is refused too
                raise ValueError(f"--{name} must be >= {least:g}, got {getattr(self, name):g}")
        for name, choices in (("encoder", ("conv", "resnet10")), ("push", ("delta", "full"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for flag, value in (("--control-priority", self.control_priority), ("--sim-priority", self.sim_priority)):
            if not 0 <= value <= 99:
                raise ValueError(f"{flag} must be 0 (off) or 1..99, got {value}")
        if self.domain_id is not None and not 0 <= self.domain_id <= 101:
            raise ValueError(f"--domain-id must be in 0..101 (the range safe on Linux), got {self.domain_id}")


@dataclass
class Stat:
    p50: float
    p99: float
    n: int  # samples

    @classmethod
    def of(cls, values) -> Stat:
        v = np.asarray(values, dtype=np.float64)
        if not len(v):
            return cls(float("nan"), float("nan"), 0)
        return cls(float(np.percentile(v, 50)), float(np.percentile(v, 99)), int(len(v)))


@dataclass
class RosBenchResult:
    jitter_ms: Stat  # |tick period - nominal|
    quiet_jitter_ms: Stat  # the same, periods around broadcasts left out
    sim_jitter_ms: Stat  # |wall time between /clock messages one nominal period of sim time apart - nominal|, quiet
    period_ms: Stat  # wall tick period
    latency_ms: Stat  # observation -> command (sim clock)
    act_ms: Stat  # tick start -> command published (wall)
    act_runq_ms: Stat  # of act_ms: the control thread runnable but preempted (schedstat run-queue wait)
    act_blocked_ms: Stat  # of act_ms: neither running nor runnable (the GIL held by another actor thread, I/O)
    infer_ms: Stat  # policy inference
    broadcast_ms: Stat  # weights publish -> in use at the actor
    ingest_ms: Stat  # interval between acks after the first (steady-state per-episode ingest)
    ingest_episodes_per_s: float  # steady state, after the first ack
    ingest_mb_per_s: float
    first_ack_s: float  # burst published -> first ack (includes building the learner's agent)
    episodes_acked: int
    episodes_sent: int
    episode_mb: float  # mean wire size of one sent episode
    actor_episodes: int  # episodes the actor completed and stored in the control phase
    broadcasts_sent: int
    broadcasts_received: int
    policy_mb: float  # wire size of one broadcast's weights (a delta with push delta)
    full_mb: float  # wire size of the full policy
    push: str  # delta or full
    encoder: str  # conv or resnet10
    nominal_period_ms: float
    seconds: float
    cores: int
    control_priority: int  # the actor's control_priority (0: its control thread ran as an ordinary thread)
    sim_priority: int  # the sim robot's control_priority (0: its physics periods ran as an ordinary thread)
    periods_outside_phase: int  # the actor's periods ending before the control phase (its first episode) or after it
    cpu_latency: str  # what the actor's cpu_latency_us got: "held 0 us", "not held (...)", "not requested"
    wake: bool  # the nodes' wake windows on (their defaults) or off
    sim_camera_thread: bool  # the sim drew its cameras on a thread of their own (False: inline in its period)
    load_avg_1m: float  # machine load when the bench started (other work skews every figure)

    @property
    def jitter_met(self) -> bool:
        return self.jitter_ms.p99 <= GOAL_JITTER_P99_MS

    @property
    def infer_met(self) -> bool:
        return self.infer_ms.p99 <= GOAL_INFER_P99_MS

    def to_json(self) -> dict:
        d = asdict(self)
        d["goals"] = {
            "jitter_p99_ms": GOAL_JITTER_P99_MS,
            "jitter_met": self.jitter_met,
            "infer_p99_ms": GOAL_INFER_P99_MS,
            "infer_met": self.infer_met,
        }
        return d


def format_ros_table(r: RosBenchResult) -> str:
    def row(name: str, s: Stat, goal: str = "", met: bool | None = None) -> str:
        verdict = "" if met is None else ("yes" if met else "NO")
        return f"{name:40} {s.p50:9.2f} {s.p99:9.2f} {s.n:6d}  {goal:12} {verdict}"

    lines = [
        f"bench ros: {r.nominal_period_ms:.0f} ms control period, 2 cameras 128x128, {r.seconds:.0f} s, "
        f"{r.cores} CPU cores, load average {r.load_avg_1m:.2f} at start (other work skews these figures), "
        f"actor control_priority {r.control_priority}, sim {r.sim_priority}, wake windows "
        f"{'on' if r.wake else 'off'}, sim cameras {'on their own thread' if r.sim_camera_thread else 'inline'}, "
        f"cpu latency {r.cpu_latency}",
        f"{'metric':40} {'p50':>9} {'p99':>9} {'n':>6}  {'goal':12} met?",
        row("control-period jitter (ms)", r.jitter_ms, f"p99 <= {GOAL_JITTER_P99_MS:g}", r.jitter_met),
        row(f"  outside broadcasts (+{BROADCAST_WINDOW_S:g} s) (ms)", r.quiet_jitter_ms),
        row("  sim /clock alone, outside bcasts (ms)", r.sim_jitter_ms),
        row("control period, wall (ms)", r.period_ms),
        row("observation -> command latency (ms)", r.latency_ms),
        row("  tick start -> command, wall (ms)", r.act_ms),
        row("    of it preempted (run queue) (ms)", r.act_runq_ms),
        row("    of it blocked (GIL, I/O) (ms)", r.act_blocked_ms),
        row("policy inference (ms)", r.infer_ms, f"p99 <= {GOAL_INFER_P99_MS:g}", r.infer_met),
        row("weights broadcast latency (ms)", r.broadcast_ms),
        row("learner ingest, per episode (ms)", r.ingest_ms),
        f"learner ingest: {r.ingest_episodes_per_s:.2f} episodes/s, {r.ingest_mb_per_s:.1f} MB/s "
        f"({r.episodes_acked}/{r.episodes_sent} acked, {r.episode_mb:.1f} MB each; first ack {r.first_ack_s:.2f} s "
        "after the burst, agent build included)",
        f"actor: {r.actor_episodes} episode(s) completed; {r.encoder} policy, {r.push} pushes of {r.policy_mb:.2f} MB "
        f"(full {r.full_mb:.1f} MB), "
        f"{r.broadcasts_received}/{r.broadcasts_sent} broadcasts in use",
        "latency is on the sim clock (20 ms steps) and mostly the age of the camera frame in use: cameras and control "
        "both at 10 Hz, so it is set by their phase (0-100 ms, fixed within an episode)",
    ]
    return "\n".join(lines)
