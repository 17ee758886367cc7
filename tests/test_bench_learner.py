"""`robot-rl bench learner` runs our learner on tiny settings and prints well-formed figures; no peer needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from robot_rl.bench.learner import (
    SPECS,
    LearnerBenchConfig,
    LearnerBenchSpec,
    LearnerResult,
    format_learner_table,
    median_of_rounds,
    run_learner_bench,
)

OUR_FIELDS = {
    "config",
    "critic_updates_per_s",
    "critic_updates",
    "insert_s_per_env_step",
    "critic_updates_per_s_incl_insert",
    "latent_dim",
    "device",
    "cores",
    "rounds",
}
PEER_FIELDS = {"peer_critic_updates_per_s", "peer_torch_compile", "ratio", "ratio_incl_insert"}


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robot_rl", "bench", "learner", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )


def _tiny_image_spec() -> LearnerBenchSpec:
    return LearnerBenchSpec(
        "image", batch_size=8, cameras=("front", "wrist"), image_hw=(32, 32), latent_dim=16, hidden_dims=(32, 32)
    )


def test_state_config_json_is_one_object_with_our_fields_and_no_peer_fields():
    proc = _run_cli(
        "--config",
        "state",
        "--updates",
        "4",
        "--warmup-steps",
        "1",
        "--capacity",
        "200",
        "--latent-dim",
        "32",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    row = json.loads(lines[0])
    assert set(row) == OUR_FIELDS
    assert row["config"] == "state" and row["device"] == "cpu" and row["latent_dim"] == 32
    assert row["critic_updates"] == 4  # 2 timed UTD steps of 2 critic updates
    assert 0 < row["critic_updates_per_s_incl_insert"] <= row["critic_updates_per_s"] < 1e5
    assert "[ours state]" in proc.stderr  # progress goes to stderr, never into the JSON


def test_image_config_caches_frozen_features_at_insert_and_reports_the_amortised_rate():
    cfg = LearnerBenchConfig(
        configs=("image",), updates=3, warmup_steps=1, capacity=200, specs={"image": _tiny_image_spec()}
    )
    (result,) = run_learner_bench(cfg)
    assert result.critic_updates == 4  # 3 updates round up to 2 whole UTD steps
    assert result.insert_s_per_env_step > 0  # frames went through the frozen ResNet-10 on the way in
    update_s = 1 / result.critic_updates_per_s
    expected = 1 / (update_s + result.insert_s_per_env_step / 2)
    assert abs(result.critic_updates_per_s_incl_insert - expected) < 1e-9 * expected
    assert result.peer_critic_updates_per_s is None and result.ratio is None
    table = format_learner_table([result], cfg.specs)
    assert "2 cameras 32x32 + 18-d state" in table and "latent 16" in table
    assert "frozen random-init ResNet-10" in table
    assert "goal" not in table  # no peer, no verdict


def test_a_missing_peer_python_is_refused_before_anything_is_timed():
    proc = _run_cli("--config", "state", "--peer-python", "/nonexistent/python", "--json")
    assert proc.returncode == 2  # a usage error: the command line names a file that is not there
    assert proc.stdout == ""
    assert "--peer-python '/nonexistent/python' is not an executable file" in proc.stderr
    assert "setup-peers.sh" in proc.stderr


def test_rounds_report_each_round_and_their_medians():
    cfg = LearnerBenchConfig(
        configs=("image",), updates=2, warmup_steps=0, capacity=200, rounds=3, specs={"image": _tiny_image_spec()}
    )
    (result,) = run_learner_bench(cfg)
    assert result.rounds == 3 and len(result.per_round) == 3
    assert result.critic_updates == 3 * 2  # every round's timed updates
    for field in ("critic_updates_per_s", "insert_s_per_env_step", "critic_updates_per_s_incl_insert"):
        per = sorted(f[field] for f in result.per_round)
        assert getattr(result, field) == per[1]
    row = result.to_json()
    assert row["rounds"] == 3 and len(row["per_round"]) == 3 and "ratio" not in row
    table = format_learner_table([result], cfg.specs)
    assert all(f"image #{i}" in table for i in (1, 2, 3)) and "image median" in table


def _round(ours: float, incl: float, peer: float) -> LearnerResult:
    return LearnerResult(
        "image",
        ours,
        120,
        0.02,
        incl,
        256,
        "cpu",
        2,
        peer_critic_updates_per_s=peer,
        peer_torch_compile=True,
        ratio=ours / peer,
        ratio_incl_insert=incl / peer,
    )


def test_the_ratio_over_rounds_is_the_median_of_paired_ratios_and_the_verdict_uses_it():
    # the machine slows down in round 2 for both sides: that pair still gives a fair ratio
    rounds = [_round(9.0, 8.0, 0.090), _round(6.0, 5.4, 0.050), _round(8.0, 7.0, 0.095)]
    result = median_of_rounds(rounds)
    assert result.ratio_incl_insert == pytest.approx(8.0 / 0.090)  # median of 88.9, 108.0, 73.7
    assert result.ratio_incl_insert != pytest.approx(7.0 / 0.090)  # not median(ours) / median(peer)
    assert result.peer_critic_updates_per_s == 0.090 and result.critic_updates_per_s == 8.0
    table = format_learner_table([result], {"image": SPECS["image"]})
    assert (
        "goal ours >= 100x LeRobot at the image config (incl. insert): NOT met (88.9x, median of 3 rounds, 73.7-108.0x)"
        in table
    )
    assert median_of_rounds(rounds[:1]) is rounds[0]


def test_rounds_below_one_are_refused():
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        LearnerBenchConfig(configs=("state",), rounds=0)
