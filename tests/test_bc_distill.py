"""Distillation back (`robot-rl bc train --from-run RUN`): a new base cloned from a run's successful episodes."""

from __future__ import annotations

import json

import numpy as np

from robot_rl import keys
from robot_rl.bc import load_base_policy
from robot_rl.cli import main
from robot_rl.data.demos import DemoConfig, record_scripted_demos
from robot_rl.data.store import EpisodeStore


def _run_with_a_failed_episode(tmp_path):
    """A run dir whose episode store holds 3 successful scripted episodes and 1 failed one (actions all 0.7)."""
    run = tmp_path / "run"
    record_scripted_demos(
        DemoConfig(task="pick_cube", episodes=3, out=run / "episodes", obs_mode="state", noise=0.1, progress=False)
    )
    store = EpisodeStore.open(run / "episodes", mode="a")
    failed = store.get_episode(0)
    failed[keys.SUCCESS] = np.zeros_like(failed[keys.SUCCESS])
    failed[keys.ACTION] = np.full_like(failed[keys.ACTION], 0.7)
    store.add_episode(failed)
    lengths = store.episode_lengths
    store.close()
    return run, int(lengths[:3].sum())


def test_bc_train_from_a_run_clones_only_its_successful_episodes_and_refuses_a_run_without_any(tmp_path, capsys):
    run, successful_steps = _run_with_a_failed_episode(tmp_path)
    out = tmp_path / "distilled"
    args = ["bc", "train", "--from-run", str(run), "--out", str(out), "--kind", "flow", "--steps", "20"]
    assert main([*args, "--batch-size", "32", "--eval-episodes", "0", "--no-progress-bar"]) == 0
    meta = json.loads((out / "bc_policy.json").read_text())["meta"]
    assert (meta["demo_episodes"], meta["demo_steps"]) == (3, successful_steps)  # the failed episode is left out
    assert meta["task"] == "pick_cube" and "successful" in meta["demos"]
    base = load_base_policy(out)
    assert base.act({keys.STATE: np.zeros(28, np.float32)}).shape == (4,)

    store = EpisodeStore.open(run / "episodes", mode="a")
    none = tmp_path / "none" / "episodes"
    empty = EpisodeStore.open_or_create(none, store.meta)
    empty.add_episode(store.get_episode(3))  # only the failed one
    empty.close()
    store.close()
    capsys.readouterr()
    rc = main(["bc", "train", "--from-run", str(none.parent), "--out", str(tmp_path / "x"), "--no-progress-bar"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "none of its 1 episodes succeeded" in err[0], err
    rc = main(["bc", "train", "--from-run", str(run), "--demos", str(run / "episodes"), "--out", str(tmp_path / "y")])
    assert rc == 2 and "not both" in capsys.readouterr().err
