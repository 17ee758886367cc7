"""The loop really learns: pick_cube from state with scripted demos, via `robot-rl train`'s own defaults."""

from __future__ import annotations

import json

import pytest

from robot_rl.cli import main


@pytest.mark.slow
@pytest.mark.timeout(1500)  # ~4 min on 2 idle cores; the limit leaves room for a shared, busy machine
def test_pick_cube_from_state_with_20_demos_succeeds_far_above_the_untrained_policy(tmp_path):
    out = tmp_path / "run"
    # Everything but the schedule is `robot-rl train --task pick_cube`'s default (20 scripted demos, TUNED_AGENT).
    rc = main(
        [
            "train",
            "--task",
            "pick_cube",
            "--obs",
            "state",
            "--steps",
            "5000",
            "--eval-every",
            "100000",
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
    assert [e["env_steps"] for e in evals] == [0, evals[-1]["env_steps"]] and evals[-1]["env_steps"] >= 5000
    untrained, trained = evals[0]["success_rate"], evals[-1]["success_rate"]
    assert untrained <= 0.1, f"the untrained policy should not pick the cube (success {untrained:.2f})"
    assert trained >= 0.6, (
        f"after 5000 env steps success should be >= 0.6, got {trained:.2f} (untrained {untrained:.2f})"
    )
    assert evals[-1]["length_mean"] < 60  # successes end the episode early: the policy picks fast, not at the limit
