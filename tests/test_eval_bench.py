"""`robot-rl eval RUN --bench` times every step's whole action (the base with its chunk execution plus the residual
or steering policy, as the actor runs it) on one torch thread: wall and CPU p50/p99/max, load average, one JSON line.
`robot-rl bc eval --bench` times a base alone with the same StepTimer."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import torch
from tiny_train import TINY_LEARNER_ARGS

from robot_rl.acting.config import ActorConfig
from robot_rl.bc import BCPolicyConfig, make_bc_policy
from robot_rl.bench.step_timing import StepTimer
from robot_rl.cli import main

EPISODE_STEPS = 25
LAYOUT = ActorConfig(task="pick_cube", obs_mode="state").layout()
FIGURE = r"p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms"


def _flow_base(path, execution: str = "replay"):
    """An untrained small flow base on pick_cube's state layout executing chunks of 4."""
    torch.manual_seed(0)
    cfg = BCPolicyConfig(kind="flow", chunk_size=4, execution=execution, hidden_dims=(32, 32), flow_steps=4)
    make_bc_policy(cfg, LAYOUT.obs_spec(), 4).save(path)
    return path


def _bench(capsys, run, episodes: int = 2) -> tuple[list[str], dict]:
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", str(episodes), "--bench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return lines, json.loads(lines[-1])


def _check_figures(lines: list[str], m: dict, episodes: int, timed: str) -> None:
    steps = round(m["length_mean"] * m["eval_episodes"])
    assert m["eval_episodes"] == episodes and m["act_steps"] == steps > 0, "one timed action per env step run"
    line = next(x for x in lines if " torch thread over " in x)
    assert timed in line and f"on 1 torch thread over {steps} steps" in line, line
    wall, cpu = re.search("wall " + FIGURE, line).groups(), re.search("thread CPU " + FIGURE, line).groups()
    assert [float(x) for x in wall] == pytest.approx([m["act_ms_p50"], m["act_ms_p99"], m["act_ms_max"]], abs=0.006)
    assert [float(x) for x in cpu] == pytest.approx(
        [m["act_cpu_ms_p50"], m["act_cpu_ms_p99"], m["act_cpu_ms_max"]], abs=0.006
    )
    for kind in ("act_ms", "act_cpu_ms"):
        assert 0 < m[f"{kind}_p50"] <= m[f"{kind}_p99"] <= m[f"{kind}_max"] < 2000, m
    assert m["act_cpu_ms_p50"] <= m["act_ms_p50"] * 1.05 + 0.05, "a thread's CPU time cannot exceed its wall time"
    assert m["torch_threads"] == 1
    assert re.search(r"load average [\d.]+ / [\d.]+ / [\d.]+ \(1 / 5 / 15 min\)", "\n".join(lines))
    assert m["load_avg_1m"] >= 0


def _train(out, *extra: str) -> None:
    args = ["train", "--task", "pick_cube", "--obs", "state", "--max-episode-steps", str(EPISODE_STEPS)]
    args += ["--steps", "50", "--warmup-steps", "25", "--scripted-demos", "0", "--seed", "3", *TINY_LEARNER_ARGS]
    assert main([*args, *extra, "--out", str(out)]) == 0


def test_eval_bench_times_a_residual_on_a_flow_base_and_a_plain_policy(tmp_path, capsys):
    base = _flow_base(tmp_path / "flow")
    _train(tmp_path / "residual", "--base-policy", str(base), "--residual-scale", "0.2")
    _train(tmp_path / "plain")

    lines, m = _bench(capsys, tmp_path / "residual", episodes=3)
    _check_figures(lines, m, 3, "base (flow, its chunk execution) + residual policy")
    assert m["length_mean"] == EPISODE_STEPS  # an untrained residual on an untrained base does not pick the cube

    lines, m = _bench(capsys, tmp_path / "plain")
    _check_figures(lines, m, 2, "one step's action, policy,")
    assert main(["eval", str(tmp_path / "plain"), "--episodes", "1"]) == 0
    assert " torch thread over " not in capsys.readouterr().out, "no timing without --bench"


def test_eval_bench_times_a_noise_steering_run_on_its_flow_base(tmp_path, capsys):
    base = _flow_base(tmp_path / "flow", execution="ensemble")
    _train(tmp_path / "dsrl", "--base-policy", str(base), "--steer", "noise")
    lines, m = _bench(capsys, tmp_path / "dsrl")
    _check_figures(lines, m, 2, "base (flow, its chunk execution) + noise-steering policy")


def test_bc_eval_bench_times_the_base_alone_with_the_same_figures(tmp_path, capsys):
    base = _flow_base(tmp_path / "flow")
    capsys.readouterr()
    assert main(["bc", "eval", str(base), "--task", "pick_cube", "--episodes", "1", "--bench"]) == 0
    lines = capsys.readouterr().out.splitlines()
    _check_figures(lines, json.loads(lines[-1]), 1, "act()")


def test_the_step_timer_measures_cpu_time_apart_from_wall_time():
    timer = StepTimer()
    sleep = timer.wrap(lambda s: time.sleep(s))
    spin = timer.wrap(lambda n: float(np.sum(np.arange(n, dtype=np.float64) ** 0.5)))
    assert spin(10) == pytest.approx(np.sum(np.sqrt(np.arange(10))))  # the wrapped call's result is returned
    sleep(0.03)
    assert timer.steps == 2
    assert timer.wall_ns[1] >= 30e6 and timer.cpu_ns[1] < 10e6, "sleeping costs wall time, not CPU"
    m = timer.summary_ms()
    assert m["act_steps"] == 2 and m["act_ms_max"] >= 30 and m["act_cpu_ms_max"] < 30
    with pytest.raises(ValueError, match="no step was timed"):
        StepTimer().summary_ms()
