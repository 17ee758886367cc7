"""`robot-rl bench ros`: the sim robot, a pixels actor and a learner as real processes over real DDS, timed.

A short run (15 s of control, 4 episodes to the learner) must produce every figure, each sane: as many
inferences and latencies as control steps, every weights broadcast in use at the actor, every episode
acknowledged by the learner. Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robot_rl.bench.ros import sim_jitter_ms

BIN = Path(sys.executable).parent


def test_sim_jitter_is_the_wall_time_between_clock_messages_crossing_each_period_minus_the_period():
    # 50 Hz clock messages; the one crossing 0.2 s arrives 7 ms late; sim time jumps over 0.4..0.6 (a reset)
    sim = [0.02 * i for i in range(1, 20)] + [0.62 + 0.02 * i for i in range(11)]
    wall = [s + (0.007 if abs(s - 0.2) < 1e-9 else 0.0) for s in sim]
    jitter = sim_jitter_ms(list(zip(wall, sim)), 0.1)
    # crossings at 0.1, 0.2 (late), 0.3, 0.7, 0.8; the 0.3 -> 0.7 jump is not a period
    assert jitter == pytest.approx([7.0, 7.0, 0.0], abs=1e-6)
    # a skip window (a weights broadcast) around the late message leaves out the period it ends
    assert sim_jitter_ms(list(zip(wall, sim)), 0.1, skip=[(0.15, 0.25)]) == pytest.approx([7.0, 0.0], abs=1e-6)


@pytest.mark.ros
@pytest.mark.timeout(240)
def test_a_short_bench_ros_run_reports_sane_figures_for_every_metric(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    out = subprocess.run(
        [
            str(BIN / "robot-rl"),
            "bench",
            "ros",
            "--seconds",
            "15",
            "--episodes",
            "4",
            "--broadcasts",
            "3",
            "--out",
            str(tmp_path / "bench"),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    r = json.loads(out.stdout)

    for name in (
        "jitter_ms",
        "quiet_jitter_ms",
        "sim_jitter_ms",
        "period_ms",
        "latency_ms",
        "act_ms",
        "infer_ms",
        "broadcast_ms",
        "ingest_ms",
    ):
        s = r[name]
        assert s["n"] > 0 and 0.0 <= s["p50"] <= s["p99"], (name, s)
    steps = r["latency_ms"]["n"]
    assert steps >= 100, "15 s at 10 Hz: at least one whole 100-step episode"
    assert r["infer_ms"]["n"] == r["act_ms"]["n"] == steps, "one inference and one command per control step"
    assert r["act_ms"]["p50"] >= r["infer_ms"]["p50"], "a tick's command comes after its inference"
    # the tick's wall time split for the control thread (SCHED_FIFO by default): parts of it, none negative
    assert r["control_priority"] == 50 and r["act_runq_ms"]["n"] == r["act_blocked_ms"]["n"] == steps
    # the sim robot steps its physics one level above the actor's tick (where this process may use SCHED_FIFO)
    sim_log = (tmp_path / "bench" / "sim_robot.log").read_text()
    assert r["sim_priority"] == 60 and "arm period thread" in sim_log, sim_log[-2000:]
    assert "SCHED_FIFO 60" in sim_log or "not permitted" in sim_log, sim_log[-2000:]
    assert 0.0 <= r["act_runq_ms"]["p99"] <= r["act_ms"]["p99"] and r["act_blocked_ms"]["p50"] >= -0.1
    # one period less than ticks per episode; ticks before the phase (the full policy's arrival) are steps, not periods
    assert r["period_ms"]["n"] >= steps - r["periods_outside_phase"] - 2 * (r["actor_episodes"] + 1)
    assert 0 <= r["periods_outside_phase"] < steps // 2  # the full policy arrives within seconds, not half the run
    assert 80.0 <= r["period_ms"]["p50"] <= 130.0 and r["nominal_period_ms"] == 100.0
    assert r["period_ms"]["n"] > r["quiet_jitter_ms"]["n"] >= r["period_ms"]["n"] / 2  # a few periods per broadcast
    assert r["latency_ms"]["p99"] <= 320.0, "an input older than max_staleness_s (0.3 s) pauses instead of acting"
    assert r["broadcasts_sent"] == r["broadcasts_received"] == r["broadcast_ms"]["n"] == 3
    assert r["actor_episodes"] >= 1 and 10.0 < r["full_mb"] < 15.0  # conv: every tensor trains, all in each push...
    assert r["push"] == "delta" and r["policy_mb"] == pytest.approx(r["full_mb"] / 2, rel=0.01)  # ...in fp16
    assert r["episodes_acked"] == r["episodes_sent"] == 4 and r["ingest_ms"]["n"] == 3
    assert r["ingest_episodes_per_s"] > 0 and 0 < r["episode_mb"] < 11.0  # <= 100 steps x 2 x 128x128x3 B + state
    assert r["ingest_mb_per_s"] == pytest.approx(r["ingest_episodes_per_s"] * r["episode_mb"])
    assert r["goals"] == {
        "jitter_p99_ms": 5.0,
        "jitter_met": r["jitter_ms"]["p99"] <= 5.0,
        "infer_p99_ms": 15.0,
        "infer_met": r["infer_ms"]["p99"] <= 15.0,
    }
    timing = [json.loads(line) for line in (tmp_path / "bench" / "actor_timing.jsonl").read_text().splitlines()]
    assert [t["version"] for t in timing if t["event"] == "policy"] == [0, 1, 2, 3, 4]  # local, full, 3 deltas
    assert "jitter p99" in (tmp_path / "bench" / "actor.log").read_text()
