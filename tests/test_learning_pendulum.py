"""Learning on a gymnasium env that is not ours, through --env-id: SAC swings Pendulum-v1 up."""

from __future__ import annotations

import json

import pytest

from robot_rl.cli import main


@pytest.mark.slow
def test_pendulum_return_rises_from_random_to_swinging_up(tmp_path):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--env-id",
            "Pendulum-v1",
            "--steps",
            "4000",
            "--warmup-steps",
            "400",
            "--eval-every",
            "2000",
            "--eval-episodes",
            "3",
            "--checkpoint-every",
            "4000",
            "--log-every",
            "1000",
            "--no-wandb",
            "--no-progress-bar",
            "--hidden-dims",
            "64",
            "64",
            "--batch-size",
            "64",
            "--utd",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["env_steps"] for e in evals] == [0, 2000, 4000]
    untrained, trained = evals[0]["return_mean"], evals[-1]["return_mean"]
    assert untrained < -900, f"the untrained policy should fail to swing up (return {untrained:.0f})"
    assert trained > max(-700.0, untrained + 500.0), (
        f"after 4000 steps the policy should swing the pendulum up (return {trained:.0f}, untrained {untrained:.0f})"
    )
