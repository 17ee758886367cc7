"""`robot-rl bench learning`: a grid of (variant, seed) training runs, resumable, reduced to multi-seed figures."""

import json
import os
from pathlib import Path

import pytest

from robot_rl.bench.learning import LearningBenchConfig, Variant, check_grid, env_steps_done, run_grid
from robot_rl.bench.learning_report import collect, write_report
from robot_rl.cli import main
from robot_rl.errors import UsageError
from robot_rl.learner import episode_log
from robot_rl.training.curves import append_eval


def _make_run(run_dir: Path, successes: list[float], shares: list[float] | None = None) -> None:
    """A finished run: evaluations every 1 k steps; training episodes of 100 steps with the operator's share."""
    run_dir.mkdir(parents=True)
    for i, rate in enumerate(successes):
        append_eval(run_dir, {"env_steps": 1000 * i, "success_rate": rate, "wall_s": 30.0 * i})
    episodes = []
    for b, share in enumerate(shares or []):
        episodes += [
            {
                "episode": len(episodes),
                "env_steps": 1000 * b + 100 * (j + 1) - 1,
                "steps": 100,
                "interventions": round(100 * share),
                "success": False,
                "return": 0.0,
            }
            for j in range(10)
        ]
    episode_log.write(run_dir, episodes)


def test_report_gives_per_seed_first_step_median_with_unreached_seeds_last_and_flags_a_collapse(tmp_path):
    out = tmp_path / "grid"
    _make_run(out / "sac" / "seed_0", [0, 0.5, 0.9, 1.0, 1.0])  # 90 % at 2 k, holds
    _make_run(out / "sac" / "seed_1", [0, 0.2, 0.4, 0.9, 0.5])  # 90 % at 3 k, then collapses to .5
    _make_run(out / "sac" / "seed_2", [0, 0.1, 0.2, 0.3, 0.4])  # never
    _make_run(out / "op" / "seed_0", [0, 1.0, 1.0, 1.0, 1.0], shares=[0.4, 0.2, 0.04, 0.02])
    _make_run(out / "op" / "seed_1", [0, 0.3, 0.3, 0.3, 0.3], shares=[0.4, 0.3, 0.3, 0.3])
    _make_run(out / "op" / "seed_2", [0, 0.3, 0.3, 0.3, 0.3], shares=[0.2, 0.3, 0.3, 0.3])
    results = collect(out, ["sac", "op"], [0, 1, 2], threshold=0.9)
    sac, op = results
    assert [s.first_at_threshold for s in sac.seeds] == [2000, 3000, None]
    assert sac.reached == 2 and sac.median_first == 3000  # the median of (2 k, 3 k, never)
    assert sac.first_range == (2000, None)  # one seed never reached it
    assert sac.collapsed == 1 and sac.seeds[1].min_after_first == 0.5
    assert op.reached == 1 and op.median_first is None  # two seeds of three never reached it

    text = write_report(out, results, 0.9, 4000, "robot-rl bench learning --out grid", "pick_cube")
    assert "| sac | 2/3 | 0: 2k, 1: 3k, 2: not by 4k | 3k (2k–not by 4k) | 1, 0.5 (1 collapsed) |" in text
    assert "| op | 1/3 |" in text and "not by 4k (1k–not by 4k)" in text
    assert "- op: 0k: 0.40 1k: 0.30 2k: 0.30 3k: 0.30" in text  # medians of each bin's shares over seeds
    assert "- sac seed 1 (at 0k, 1k … 4k): 0 0.2 0.4 0.9 0.5" in text
    # after op seed 0's first 90 % (1 k) its bins were .2 .04 .02: not below the 5 % goal in every one
    assert "- op: seed 0 from 1k: 0.20 0.04 0.02 (highest 0.20) — every bin below 5% in 0 of 1 seeds" in text
    assert "- op: earlier in 1, the same in 1, later in 1" in text  # 1k < 2k; never = never; never > 3k
    assert (out / "results.md").read_text() == text
    data = json.loads((out / "results.json").read_text())
    assert data["variants"][0]["median_first"] == 3000 and data["command"] == "robot-rl bench learning --out grid"
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_counts_seeds_whose_operator_share_stays_below_the_goal_after_their_first_threshold(tmp_path):
    out = tmp_path / "grid"
    _make_run(out / "noop" / "seed_0", [0, 0.5, 0.9, 1.0])
    _make_run(out / "noop" / "seed_1", [0, 0.9, 1.0, 1.0])
    _make_run(out / "op" / "seed_0", [0, 0.9, 1.0, 1.0], shares=[0.3, 0.04, 0.01])  # from 1 k: .04 .01
    _make_run(out / "op" / "seed_1", [0, 0.9, 1.0, 1.0], shares=[0.3, 0.3, 0.06])  # from 1 k: .3 .06
    _make_run(out / "op" / "seed_2", [0, 0.5, 0.9, 1.0], shares=[0.3, 0.3, 0.0])  # no noop seed 2 to pair
    results = collect(out, ["noop", "op"], [0, 1, 2], threshold=0.9)
    assert results[1].seeds[0].share_after_first() == [0.04, 0.01]
    assert results[1].seeds[2].share_after_first() == [0.0]  # bins from its first 90 % at 2 k only
    text = write_report(out, results, 0.9, 3000, "robot-rl bench learning --out grid", "peg_insert")
    assert "every bin below 5% in 2 of 3 seeds that reached 90%" in text
    assert "seed 1 from 1k: 0.30 0.06 (highest 0.30)" in text
    assert "- op: earlier in 1, the same in 1, later in 0" in text  # seeds 0 and 1 only


def test_variants_refuse_options_the_grid_owns_and_a_grid_refuses_other_settings(tmp_path):
    assert Variant.parse("op=--operator --utd 4") == Variant("op", ("--operator", "--utd", "4"))
    with pytest.raises(UsageError, match="--seed"):
        Variant.parse("bad=--seed 3")
    with pytest.raises(UsageError, match="variant name"):
        Variant.parse("=--operator")
    check_grid(LearningBenchConfig(out=tmp_path, task="pick_cube", variants=[Variant("op", ("--operator",))]))
    with pytest.raises(UsageError, match="task = 'pick_cube'"):
        check_grid(LearningBenchConfig(out=tmp_path, task="peg_insert"))
    with pytest.raises(UsageError, match="give it another name"):
        check_grid(LearningBenchConfig(out=tmp_path, variants=[Variant("op", ("--utd", "4"))]))
    check_grid(LearningBenchConfig(out=tmp_path, variants=[Variant("new", ("--utd", "4"))]))  # a new variant: fine
    assert set(json.loads((tmp_path / "grid.json").read_text())["variants"]) == {"op", "new"}


@pytest.mark.timeout(300)
def test_the_grid_trains_every_seed_as_its_own_run_resumes_and_restarts_a_run_killed_before_its_checkpoint(
    tmp_path, capsys
):
    out = tmp_path / "grid"
    stray = out / "default" / "seed_1"
    stray.mkdir(parents=True)
    (stray / "eval.jsonl").write_text('{"env_steps": 0, "success_rate": 0.0}\n')  # started, no checkpoint
    argv = [
        "bench",
        "learning",
        "--task",
        "pick_cube",
        "--obs",
        "state",
        "--seeds",
        "2",
        "--steps",
        "200",
        "--eval-every",
        "100",
        "--eval-episodes",
        "1",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--train-args",
        "--scripted-demos 1 --warmup-steps 100 --batch-size 16 --checkpoint-every 100",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for seed in (0, 1):
        run = out / "default" / f"seed_{seed}"
        assert env_steps_done(run) >= 200 and any((run / "checkpoints").glob("step_*"))
        assert json.loads((run / "train_config.json").read_text())["seed"] == seed
    assert "| default | " in printed and "--seeds 2 --steps 200" in printed
    logs = {p: p.stat().st_mtime_ns for p in out.glob("default/*.train.log")}
    assert len(logs) == 2

    cfg = LearningBenchConfig(
        out=out,
        seeds=[0, 1],
        steps=200,
        eval_every=100,
        eval_episodes=1,
        train_args=(
            "--scripted-demos",
            "1",
            "--warmup-steps",
            "100",
            "--batch-size",
            "16",
            "--checkpoint-every",
            "100",
        ),
    )
    assert run_grid(cfg) == []  # everything finished: nothing starts
    assert {p: p.stat().st_mtime_ns for p in out.glob("default/*.train.log")} == logs
    assert os.path.getsize(out / "results.md") > 0


def test_runs_at_once_fit_the_memory_a_pixel_replay_takes_and_a_killed_run_says_how_to_resume(tmp_path):
    from robot_rl.bench import learning_memory as mem
    from robot_rl.bench.learning import exit_reason

    assert mem.replay_capacity_arg(["--utd", "4", "--replay-capacity", "32000"]) == 32000
    assert mem.replay_capacity_arg(["--replay-capacity=8000", "--replay-capacity", "9000"]) == 9000  # the last wins
    assert mem.replay_capacity_arg(["--replay-capacity", "0"]) is None  # 0: automatic
    # a run's replay never holds more transitions than its env steps: 30 k pixel steps ~3 GB of frames, not 32 k rows
    pixels, how = mem.run_bytes("peg_insert", "pixels", 30_000, ["--replay-capacity", "32000"])
    assert 4.0e9 < pixels < 5.0e9 and "30000 transitions" in how  # measured peak of such a run: ~4.5 GB
    short, _ = mem.run_bytes("peg_insert", "pixels", 5_000, ["--replay-capacity", "32000"])
    small_replay, _ = mem.run_bytes("peg_insert", "pixels", 30_000, ["--replay-capacity", "5000"])
    assert short == small_replay < pixels
    state, _ = mem.run_bytes("peg_insert", "state", 30_000, [])
    assert state < 1.1e9 < short

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   10000000 kB\n")
    available = mem.available_bytes(meminfo)
    assert available == 10_240_000_000 and mem.available_bytes(tmp_path / "missing") is None
    assert mem.memory_jobs(int(4.5e9), available) == 2 and mem.memory_jobs(int(20e9), available) == 1
    assert mem.memory_jobs(int(4.5e9), None) is None
    assert "may be killed for memory" in mem.jobs_line(8, 4, 2, int(4.5e9), how, available)
    assert "may be killed" not in mem.jobs_line(8, 2, 2, int(4.5e9), how, available)

    cfg = LearningBenchConfig(out=tmp_path, task="peg_insert", obs="pixels", steps=30_000, jobs=7)
    assert cfg.jobs_and_why()[0] == 7  # an explicit --jobs is kept (with a warning when it does not fit)
    auto = LearningBenchConfig(out=tmp_path, task="peg_insert", obs="pixels", steps=30_000)
    assert 1 <= auto.jobs_and_why()[0] <= len(os.sched_getaffinity(0))

    assert "out-of-memory" in exit_reason(-9) and "resumes it" in exit_reason(-9)
    assert exit_reason(-15).startswith("was killed by SIGTERM") and exit_reason(1) == "failed (exit 1)"
