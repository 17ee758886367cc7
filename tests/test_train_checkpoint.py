"""Run checkpoints: random states round-trip exactly, `latest` always names a complete checkpoint."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from robot_rl.training.checkpoint import Progress, find_checkpoint, restore_rng_state, rng_state


def _draw(np_rng, gen):
    return (random.random(), float(np_rng.random()), float(np.random.rand()), float(torch.rand(1)),
            float(torch.rand(1, generator=gen)))


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


def test_find_checkpoint_follows_latest_from_a_run_dir_and_refuses_a_dangling_pointer(tmp_path):
    step = tmp_path / "checkpoints" / "step_200"
    step.mkdir(parents=True)
    (step / "progress.json").write_text(json.dumps({"env_steps": 200, "episodes": 2}))
    (tmp_path / "checkpoints" / "latest").write_text("step_200\n")
    assert find_checkpoint(tmp_path) == step
    assert find_checkpoint(step) == step
    assert Progress.from_json(step / "progress.json").env_steps == 200
    (tmp_path / "checkpoints" / "latest").write_text("step_400\n")
    with pytest.raises(FileNotFoundError, match="names .*step_400, which is not a complete checkpoint"):
        find_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="expected a run dir with checkpoints/latest"):
        find_checkpoint(tmp_path / "elsewhere")
