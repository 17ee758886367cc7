"""`robot-rl bench learner` runs our learner on tiny settings and prints well-formed figures; no peer needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from robot_rl.bench.learner import LearnerBenchConfig, LearnerBenchSpec, format_learner_table, run_learner_bench

OUR_FIELDS = {"config", "critic_updates_per_s", "critic_updates", "insert_s_per_env_step",
              "critic_updates_per_s_incl_insert", "latent_dim", "device", "cores"}
PEER_FIELDS = {"peer_critic_updates_per_s", "peer_torch_compile", "ratio", "ratio_incl_insert"}


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot_rl", "bench", "learner", *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})


def _tiny_image_spec() -> LearnerBenchSpec:
    return LearnerBenchSpec("image", batch_size=8, cameras=("front", "wrist"), image_hw=(32, 32), latent_dim=16,
                            hidden_dims=(32, 32))


def test_state_config_json_is_one_object_with_our_fields_and_no_peer_fields():
    proc = _run_cli("--config", "state", "--updates", "4", "--warmup-steps", "1", "--capacity", "200",
                    "--latent-dim", "32", "--json")
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
    cfg = LearnerBenchConfig(configs=("image",), updates=3, warmup_steps=1, capacity=200,
                             specs={"image": _tiny_image_spec()})
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
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "--peer-python '/nonexistent/python' is not an executable file" in proc.stderr
    assert "setup-peers.sh" in proc.stderr
