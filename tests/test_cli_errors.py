"""Every refusal of `robot-rl` is one line on stderr with exit 2 (usage) or 1 (runtime), no traceback, and leaves the
files it was pointed at as they were. Each row runs the real console script in a fresh tmp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_store import _make_episode

from robot_rl.data.store import EpisodeStore

ROBOT_RL = Path(sys.executable).parent / "robot-rl"
STATE_META = {"task": "pick_cube", "obs_mode": "state", "control_rate_hz": 10.0}
HOSTILE_BASES = """import numpy as np
from robot_rl.bc.base import CallablePolicy
def raises():
    raise RuntimeError("no weights here")
def garbage():
    return 42
def nan_actions():
    return CallablePolicy(lambda obs: np.full(4, np.nan), action_dim=4)
"""


def _make_fixtures(root: Path) -> None:
    """What the bad inputs point at: stores (empty, of another task, of pixels), a non-run dir, a file, a run dir
    without checkpoints, a run dir with a torn eval.jsonl."""
    EpisodeStore.create(root / "empty_store", STATE_META)
    for name, meta in (
        ("peg_store", {**STATE_META, "task": "peg_insert"}),
        ("pixel_store", {**STATE_META, "obs_mode": "pixels"}),
        # recorded with another translation per full action than peg_insert's: its actions mean other motions
        ("old_scale_peg_store", {**STATE_META, "task": "peg_insert", "action_scale": {"max_step_m": 0.05}}),
    ):
        EpisodeStore.create(root / name, meta).add_episode(_make_episode(0, 5, image_hw=(8, 8)))
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "notes.txt").write_text("hello\n")
    (root / "a_file").write_text("not a directory\n")
    (root / "fresh_run").mkdir()
    (root / "fresh_run" / "train_config.json").write_text("{}\n")
    lost = EpisodeStore.create(root / "lost_array_store", STATE_META)
    lost.add_episode(_make_episode(0, 5))
    lost.close()
    shutil.rmtree(root / "lost_array_store" / "data" / "reward")  # a whole column deleted: refused, not dropped
    (root / "garbage_store").mkdir()
    (root / "garbage_store" / "zarr.json").write_text("garbage{")
    (root / "list_run").mkdir()
    (root / "list_run" / "train_config.json").write_text("[]\n")
    small = EpisodeStore.create(root / "small_state_store", STATE_META)  # pick_cube, state, but 18 state dims
    small.add_episode(_make_episode(0, 5))
    small.close()
    for name, damage in (("chunk_garbage_store", "garble"), ("lost_chunk_store", "delete")):
        store = EpisodeStore.create(root / name, STATE_META)
        store.add_episode(_make_episode(0, 5))
        store.close()
        chunk = root / name / "data" / "state" / "c" / "0" / "0"
        chunk.write_bytes(b"\x13" * 100) if damage == "garble" else chunk.unlink()
    (root / "hostile_bases.py").write_text(HOSTILE_BASES)  # module:factory bases (cwd is on PYTHONPATH)
    (root / "broken.pt").write_text("not a TorchScript zip\n")
    (root / "no_policy_dir").mkdir()
    torn = root / "torn_run"
    torn.mkdir()
    (torn / "eval.jsonl").write_text(
        json.dumps({"env_steps": 0, "success_rate": 0.0, "return_mean": 0.0}) + "\n" + '{"env_steps": 100, "succ'
    )


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    _make_fixtures(root)
    return root


def _run(argv: list[str], cwd: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONWARNINGS": "ignore"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH", "")) if p)
    env.pop("ROBOT_RL_DEBUG", None)
    return subprocess.run(
        [str(ROBOT_RL), *argv], cwd=cwd, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120
    )


# (argv, exit code, a word the one-line message must contain)
BAD_INPUTS = [
    (["train", "--steps", "0"], 2, "--steps must be >= 1"),
    (["train", "--task", "fly"], 2, "pick_cube"),
    (["train", "--device", "cuda:7"], 2, "--device"),
    (["train", "--demos", "missing"], 2, "does not exist"),
    (["train", "--demos", "not_a_run"], 2, "not an episode store"),
    (["train", "--demos", "empty_store"], 2, "0 episodes"),
    (["train", "--demos", "peg_store"], 2, "--task peg_insert"),
    (["train", "--demos", "old_scale_peg_store", "--task", "peg_insert"], 2, "50 mm per full action"),
    (["train", "--demos", "pixel_store", "--obs", "state"], 2, "--obs pixels"),
    (["train", "--env-id", "NoSuchEnv-v9"], 2, "--env-id"),
    (["train", "--out", "a_file/run"], 2, "cannot be created"),
    (["train", "--out", "/proc/robot_rl_run"], 2, "not writable"),
    (["train", "--resume", "not_a_run"], 2, "not a training run"),
    (["train", "--base-policy", "missing"], 2, "does not exist"),
    (["eval", "not_a_run"], 2, "train_config.json"),
    (["eval", "fresh_run"], 2, "no checkpoint yet"),
    (["eval", "not_a_run", "--episodes", "0"], 2, "positive integer"),
    (["compare", "not_a_run"], 2, "eval.jsonl"),
    (["compare", "torn_run", "--labels", "a", "b"], 2, "2 labels for 1 runs"),
    (["bc", "eval", "not_a_run"], 2, "bc_policy"),
    (["demos", "record", "--task", "pick_cube", "--scripted", "--episodes", "0", "--out", "d"], 2, "positive"),
    (["demos", "record", "--task", "pick_cube", "--scripted", "--episodes", "1", "--out", "a_file"], 2, "is a file"),
    (
        ["demos", "record", "--task", "pick_cube", "--scripted", "--episodes", "1", "--out", "pixel_store"],
        1,
        "obs_mode",
    ),
    (["data", "info", "missing"], 1, "does not exist"),
    (["data", "view", "pixel_store", "--episode", "5"], 2, "out of range"),
    (["reward", "record", "--task", "fly", "--out", "r"], 2, "pick_cube"),
    (["reward", "label", "not_a_run"], 2, "not an episode store"),
    (["calibrate", "board", "--out", "a_file/board.yaml"], 2, "is a file"),
    (
        ["calibrate", "intrinsics", "--images", "missing", "--board", "missing.yaml", "--out", "cam.yaml"],
        1,
        "does not exist",
    ),
    (["up", "no_such_setup"], 2, "sim_single"),
    (["up", "sim_single", "--set", "nobody:x:=1", "--dry-run"], 2, "has no node 'nobody'"),
    (["bench", "learner", "--device", "cuda"], 2, "no CUDA GPU"),
    (["bench", "learner", "--updates", "0"], 2, "updates and peer_updates must be >= 1"),
    (["bench", "sim", "--steps", "0"], 2, "--steps must be >= 1, got 0"),
    (["bench", "sim", "--steps", "many"], 2, "bench sim: argument --steps: invalid int value"),
    (["bench", "sim", "--peer-python", "missing/python"], 2, "--peer-python 'missing/python' is not an executable"),
    (["bench", "ros", "--seconds", "1"], 2, "--seconds must be >= 5, got 1"),
    (["bench", "learning", "--variant", "a?b", "--out", "grid"], 2, "variant name 'a?b'"),
    (["bench", "learning", "--steps", "0", "--out", "grid"], 2, "--steps must be >= 1, got 0"),
    (["no-such-command"], 2, "invalid choice"),
    # numbers that reached torch or numpy before they were checked (found by trying, each was an internal error or
    # trained on NaN actions)
    (["train", "--actor-lr", "-1"], 2, "--actor-lr must be a finite number > 0"),
    (["train", "--critic-lr", "inf"], 2, "--critic-lr must be a finite number > 0"),
    (["train", "--gamma", "nan"], 2, "--gamma must be a discount in [0, 1]"),
    (["train", "--tau", "-0.1"], 2, "--tau must be a Polyak rate"),
    (["train", "--init-temperature", "0"], 2, "--init-temperature must be a finite number > 0"),
    (["train", "--target-entropy", "nan"], 2, "--target-entropy must be a finite number"),
    (["train", "--log-std-range", "2", "-5"], 2, "--log-std-range must be two finite numbers"),
    (["train", "--batch-size", "0"], 2, "--batch-size must be >= 1"),
    (["train", "--hidden-dims", "-4"], 2, "--hidden-dims must be one or more widths >= 1"),
    (["train", "--seed", "-1"], 2, "--seed must be in [0, 2**32 - 1]"),
    (["train", "--replay-capacity", "1"], 2, "--replay-capacity must be 0 (auto) or >= 2"),
    (["train", "--intervention-penalty", "nan"], 2, "--intervention-penalty must be a finite number"),
    (["train", "--base-noise", "nan"], 2, "--base-noise must be >= 0"),
    (["bc", "train", "--demos", "pixel_store", "--out", "bc", "--lr", "nan"], 2, "--lr must be a finite number > 0"),
    (["bc", "train", "--demos", "pixel_store", "--out", "bc", "--weight-decay", "-1"], 2, "--weight-decay must be"),
    (["bc", "train", "--demos", "peg_store", "--out", "bc", "--task", "pick_cube"], 2, "holds peg_insert demos"),
    # damaged stores and runs
    (["data", "info", "lost_array_store"], 1, "data/reward is missing"),
    (["train", "--demos", "lost_array_store"], 2, "data/reward is missing"),
    (["data", "repair", "missing"], 1, "no episode store at missing"),
    (["data", "repair", "garbage_store"], 1, "its zarr.json is unreadable"),
    (["train", "--resume", "list_run"], 2, "holds a JSON list, not an object"),
    (["data", "view", "pixel_store", "--episode", "0", "--out", "a_file"], 2, "must be an .mp4 file path"),
    # found by the second hostile pass (issue 20 against the new commands): each was an internal error, wrote a
    # directory before refusing, or (change_state, deltas) ended or misled a node -- see tests/test_ros_hostile.py
    (["train", "--demos", "small_state_store"], 2, "does not fit this env"),
    (["data", "info", "chunk_garbage_store", "--verify"], 1, "corrupt chunk"),
    (["data", "info", "lost_chunk_store", "--verify"], 1, "is missing"),
    (["train", "--base-policy", "hostile_bases:raises"], 2, "raises() raised RuntimeError: no weights here"),
    (["train", "--base-policy", "hostile_bases:garbage"], 2, "returned a int"),
    (["train", "--base-policy", "no_policy_dir"], 2, "holds no base policy"),
    (["bc", "eval", "broken.pt", "--bench"], 2, "is not a TorchScript module"),
    (["bc", "eval", "hostile_bases:raises"], 2, "raised RuntimeError"),
    (["bench", "learning", "--seed-list", "-1", "--out", "grid"], 2, "distinct seeds in [0, 2**32 - 1]"),
    (["bench", "learning", "--seed-list", "1", "1", "--out", "grid"], 2, "distinct seeds"),
    (["bench", "learning", "--task", "fly", "--out", "grid"], 2, "unknown --task 'fly'"),
    (["bench", "learning", "--report-only", "--out", "no_grid"], 2, "holds no grid"),
    (
        ["data", "view", "pixel_store", "--episode", "0", "--out", "v.mp4", "--fps", "nan"],
        2,
        "--fps: must be a number > 0",
    ),
    (
        ["data", "view", "pixel_store", "--episode", "0", "--out", "v.mp4", "--camera-height", "0"],
        2,
        "--camera-height: must be a positive integer",
    ),
]


@pytest.mark.parametrize("argv,code,word", BAD_INPUTS, ids=[" ".join(a) for a, _, _ in BAD_INPUTS])
def test_a_bad_input_is_one_line_with_its_exit_code_and_changes_nothing(workdir, argv, code, word):
    before = _snapshot(workdir)
    out = _run(argv, workdir)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert "Traceback" not in out.stderr, out.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{out.stderr}"
    assert lines[0].startswith("robot-rl: error: "), lines[0]  # argparse's refusals too: one format for all
    assert word in lines[0], lines[0]
    assert out.returncode == code, (out.returncode, lines[0])
    assert _snapshot(workdir) == before, "a refused command changed files"
    assert not any(p.name.startswith(".robot_rl-write-check") for p in workdir.rglob("*"))


def test_the_parser_builds_without_torch_mujoco_zarr_matplotlib_or_rclpy():
    """`robot-rl --help` and every refusal above build the whole parser first: it must not pay torch's ~1 s import
    (it did, through TrainConfig -> robot_rl.agents; see robot_rl/agents/__init__.py)."""
    heavy = ("torch", "mujoco", "zarr", "matplotlib", "rclpy")
    code = (
        "import sys, robot_rl.cli; robot_rl.cli.build_parser(); "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"building the parser imported {out.stdout.strip()}"


def test_debug_shows_the_traceback_of_a_refusal(workdir):
    for extra, argv in (
        ({}, ["--debug", "train", "--task", "fly"]),
        ({"ROBOT_RL_DEBUG": "1"}, ["train", "--task", "fly"]),
    ):
        out = _run(argv, workdir, extra)
        assert out.returncode == 2
        assert "Traceback (most recent call last)" in out.stderr and "UsageError" in out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("robot-rl: error: unknown --task 'fly'")


def test_a_closed_pipe_ends_quietly(workdir):
    """`robot-rl data info S | head -1`: the reader leaves early; no BrokenPipeError, exit 0."""
    proc = subprocess.run(
        f"'{ROBOT_RL}' data info pixel_store | head -1",
        shell=True,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert len(proc.stdout.splitlines()) == 1
    assert "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_torn_last_eval_line_is_skipped_with_a_warning(workdir, capsys):
    from robot_rl.training.curves import read_evals

    assert [r["env_steps"] for r in read_evals(workdir / "torn_run")] == [0]
    assert "skipping its torn last line" in capsys.readouterr().err


TINY_RUN = [
    "--steps",
    "50",
    "--warmup-steps",
    "25",
    "--eval-every",
    "50",
    "--eval-episodes",
    "1",
    "--video-episodes",
    "0",
    "--checkpoint-every",
    "50",
    "--no-wandb",
    "--no-progress-bar",
    "--hidden-dims",
    "16",
    "16",
    "--batch-size",
    "16",
    "--utd",
    "1",
]


def test_train_runs_on_a_gymnasium_mujoco_env_and_its_store_names_obs_mode_and_rate(tmp_path):
    """gymnasium's own MuJoCo envs need its mujoco extra (imageio); the run's store says what it holds."""
    from robot_rl.cli import main

    out = tmp_path / "run"
    assert (
        main(["train", "--env-id", "InvertedPendulum-v5", "--max-episode-steps", "25", *TINY_RUN, "--out", str(out)])
        == 0
    )
    store = EpisodeStore.open(out / "episodes")
    assert store.n_steps >= 50 and store.spec["state"].step_shape == (4,)
    assert store.meta["env_id"] == "InvertedPendulum-v5" and store.meta["obs_mode"] == "state"
    assert store.meta["control_rate_hz"] == pytest.approx(25.0)  # dt 0.04 s


def test_a_sim_runs_store_has_the_task_obs_mode_and_control_rate_of_recorded_demos(tmp_path):
    from robot_rl.cli import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--task",
                "pick_cube",
                "--scripted-demos",
                "0",
                "--max-episode-steps",
                "25",
                *TINY_RUN,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = EpisodeStore.open(out / "episodes").meta
    assert (meta["task"], meta["obs_mode"], meta["control_rate_hz"]) == ("pick_cube", "state", 10.0)
    assert meta["source"] == "online" and meta["obs_layout"]["state"]


def test_train_without_obs_takes_the_demos_mode_and_says_so(workdir, capsys):
    from robot_rl.cli.checks import check_demos

    assert check_demos(str(workdir / "pixel_store"), "pick_cube", "state", obs_given=False) == "pixels"
    assert "holds pixels observations: training with --obs pixels" in capsys.readouterr().out


def test_a_base_policy_that_returns_nan_ends_train_with_one_line(workdir, tmp_path, capsys, monkeypatch):
    """Found acting, not loading: a module:factory base whose actions are NaN was an internal error mid-run."""
    from robot_rl.cli import main

    monkeypatch.syspath_prepend(str(workdir))
    argv = ["train", "--base-policy", "hostile_bases:nan_actions", "--scripted-demos", "0", "--max-episode-steps", "10"]
    assert main([*argv, *TINY_RUN, "--out", str(tmp_path / "run")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["robot-rl: error: the base policy returned a non-finite action [nan nan nan nan]"], err
