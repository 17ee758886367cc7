"""Residual RL really improves a weak base: BC on 8 scripted pick_cube demos, then `robot-rl train --base-policy`."""

from __future__ import annotations

import json
import os
import time

import pytest

from robot_rl.cli import main

BASE_DEMOS = 8  # few demos: the BC base picks the cube in ~70 % of the evaluation episodes (20 demos: ~85-90 %)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("ROBOT_RL_EXTENDED_TESTS") != "1",
    reason="~6 min; fails today (2026-12-05, MuJoCo 4.0.1: base 0.55, late 0.6 vs 0.65 needed, identically before and "
    "after the one-core refactor): run with ROBOT_RL_EXTENDED_TESTS=1",
)
@pytest.mark.timeout(900)  # ~5 min on 2 idle cores; the limit leaves room for a shared, busy machine
def test_residual_rl_raises_the_success_of_a_bc_base_trained_on_few_demos(tmp_path):
    demos, bc, out = tmp_path / "demos", tmp_path / "bc", tmp_path / "run"
    t0 = time.perf_counter()
    assert (
        main(
            [
                "demos",
                "record",
                "--task",
                "pick_cube",
                "--scripted",
                "--episodes",
                str(BASE_DEMOS),
                "--obs",
                "state",
                "--noise",
                "0.1",
                "--out",
                str(demos),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "bc",
                "train",
                "--demos",
                str(demos),
                "--out",
                str(bc),
                "--steps",
                "1000",
                "--hidden-dims",
                "128",
                "128",
                "--eval-episodes",
                "0",
                "--no-progress-bar",
            ]
        )
        == 0
    )
    # The same few demos are the RL demos (relabelled with the base's actions); the residual starts at the base.
    rc = main(
        [
            "train",
            "--task",
            "pick_cube",
            "--obs",
            "state",
            "--demos",
            str(demos),
            "--base-policy",
            str(bc),
            "--residual-scale",
            "0.3",
            "--critic-only-steps",
            "1000",
            "--warmup-steps",
            "500",
            "--steps",
            "5000",
            "--eval-every",
            "1000",
            "--eval-episodes",
            "20",
            "--video-episodes",
            "0",
            "--checkpoint-every",
            "5000",
            "--log-every",
            "1000",
            "--no-wandb",
            "--no-progress-bar",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert evals[0]["env_steps"] == 0 and evals[-1]["env_steps"] >= 5000
    base = evals[0]["success_rate"]  # the untrained residual is exactly the base
    late = [e["success_rate"] for e in evals if e["env_steps"] >= 4000]  # evaluations at 4000, 5000 and the end
    tuned = sum(late) / len(late)
    print(
        f"base {base:.2f} -> residual {[e['success_rate'] for e in evals]} over {evals[-1]['env_steps']} env "
        f"steps; {time.perf_counter() - t0:.0f} s in all"
    )
    assert 0.3 <= base <= 0.85, f"the 8-demo BC base should be weak but working (success {base:.2f})"
    assert tuned >= base + 0.1, f"residual RL should raise the base's success by >= 0.1: {base:.2f} -> {late}"
