"""Run checkpoints: random states round-trip exactly; damaged checkpoints are found by their manifest and skipped."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from robot_rl.learner.checkpoint import (
    LEGACY_NOTE,
    MANIFEST,
    CheckpointError,
    RunCounters,
    checkpoint_dirs,
    checkpoint_problem,
    find_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)


def _draw(np_rng, gen):
    return (
        random.random(),
        float(np_rng.random()),
        float(np.random.rand()),
        float(torch.rand(1)),
        float(torch.rand(1, generator=gen)),
    )


def test_random_states_survive_json_and_replay_the_same_draws():
    np_rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(2)
    _draw(np_rng, gen)
    saved = json.loads(json.dumps(rng_state(np_rng, {"replay": gen})))
    first = _draw(np_rng, gen)
    _draw(np_rng, gen)
    other_np, other_gen = np.random.default_rng(99), torch.Generator().manual_seed(99)
    restore_rng_state(saved, other_np, {"replay": other_gen})
    assert _draw(other_np, other_gen) == first


def test_restoring_a_generator_the_checkpoint_lacks_names_what_it_has():
    saved = rng_state(np.random.default_rng(0), {"online_replay": torch.Generator()})
    with pytest.raises(ValueError, match=r"no random state for 'demo_replay' \(it has \['online_replay'\]\)"):
        restore_rng_state(saved, np.random.default_rng(0), {"demo_replay": torch.Generator()})


def _agent():
    import gymnasium as gym

    from robot_rl.agents import make_agent
    from robot_rl.agents.config import AgentConfig

    box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    return make_agent(AgentConfig(hidden_dims=(8,)), box, gym.spaces.Box(-1.0, 1.0, (1,), np.float32), seed=0)


def _save(run, agent, env_steps: int, keep: int = 0):
    rng = rng_state(np.random.default_rng(0), {})
    return save_checkpoint(run, agent, {"steps": env_steps}, RunCounters(env_steps, env_steps // 100), rng, keep)


@pytest.fixture()
def three_checkpoints(tmp_path):
    """A run dir with complete checkpoints at env steps 100, 200, 300."""
    agent = _agent()
    for step in (100, 200, 300):
        _save(tmp_path, agent, step)
    return tmp_path


def test_each_checkpoint_carries_a_manifest_of_every_file_and_verifies(three_checkpoints):
    ckpt = three_checkpoints / "checkpoints" / "step_300"
    files = json.loads((ckpt / MANIFEST).read_text())["files"]
    assert {"progress.json", "rng.json", "agent/agent.safetensors", "agent/policy/policy.safetensors"} <= set(files)
    weights = ckpt / "agent" / "agent.safetensors"
    assert files["agent/agent.safetensors"]["bytes"] == weights.stat().st_size > 1000
    assert checkpoint_problem(ckpt) is None
    assert find_checkpoint(three_checkpoints) == ckpt == find_checkpoint(ckpt)
    assert not list((three_checkpoints / "checkpoints").glob(".tmp_*"))


def test_a_flipped_byte_in_the_newest_checkpoint_is_reported_in_one_line_and_the_previous_one_used(three_checkpoints):
    weights = three_checkpoints / "checkpoints" / "step_300" / "agent" / "agent.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of the tensors: still a valid safetensors file
    weights.write_bytes(bytes(data))
    lines = []
    assert find_checkpoint(three_checkpoints, warn=lines.append).name == "step_200"
    assert lines == ["checkpoint step_300 is corrupt (agent/agent.safetensors checksum mismatch); using step_200"]
    with pytest.raises(CheckpointError, match="step_300 is unusable: agent/agent.safetensors checksum mismatch"):
        find_checkpoint(weights.parent.parent)  # asked for by name: refused, not replaced


def test_a_truncated_and_a_half_written_checkpoint_are_both_skipped(three_checkpoints):
    root = three_checkpoints / "checkpoints"
    weights = root / "step_300" / "agent" / "agent.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    half = root / "step_400"  # an older robot_rl's write cut short: no manifest, no agent yet
    half.mkdir()
    (half / "progress.json").write_text(json.dumps({"env_steps": 400, "episodes": 4}))
    lines = []
    assert find_checkpoint(three_checkpoints, warn=lines.append).name == "step_200"
    assert lines[0].startswith("checkpoint step_400 is incomplete (no MANIFEST.json and rng.json, ")
    written = json.loads((root / "step_300" / MANIFEST).read_text())["files"]["agent/agent.safetensors"]["bytes"]
    assert lines[1] == (
        f"checkpoint step_300 is truncated (agent/agent.safetensors has 100 bytes, {written} "
        "written (truncated or overwritten)); using step_200"
    )
    assert len(lines) == 2


def test_a_complete_checkpoint_without_manifest_is_used_with_a_warning_unless_it_does_not_parse(three_checkpoints):
    ckpt = three_checkpoints / "checkpoints" / "step_300"
    (ckpt / MANIFEST).unlink()  # as written before checkpoints carried checksums
    lines = []
    assert find_checkpoint(three_checkpoints, warn=lines.append) == ckpt
    assert lines == [f"checkpoint step_300 {LEGACY_NOTE}"]
    weights = ckpt / "agent" / "agent.safetensors"
    weights.write_bytes(b"\xff" * 16)
    assert "agent/agent.safetensors does not parse" in checkpoint_problem(ckpt)
    assert find_checkpoint(three_checkpoints, warn=None).name == "step_200"


def test_no_complete_checkpoint_names_each_problem_and_the_command_that_restarts(tmp_path):
    ckpt = _save(tmp_path, _agent(), 100)
    (ckpt / "rng.json").write_text("{}")
    with pytest.raises(
        CheckpointError,
        match=r"no complete checkpoint in .*\(step_100: rng.json has 2 bytes, .*"
        r"mv .*checkpoints .*checkpoints.bad && robot-rl train --resume ",
    ):
        find_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        find_checkpoint(tmp_path / "elsewhere")


def test_pruning_keeps_the_newest_and_drops_leftovers_and_checkpoints_a_resume_abandoned(tmp_path):
    agent = _agent()
    for step in (100, 200, 300, 400):
        _save(tmp_path, agent, step, keep=2)
    root = tmp_path / "checkpoints"
    assert [p.name for p in checkpoint_dirs(root)] == ["step_400", "step_300"]
    (root / ".tmp_step_500").mkdir()  # a write killed before its rename
    _save(tmp_path, agent, 350, keep=1)  # resumed from an older checkpoint: 400 belongs to an abandoned past
    assert [p.name for p in root.iterdir() if p.is_dir()] == ["step_350"]
    assert (root / "latest").read_text().strip() == "step_350"
