"""Early checks of command-line inputs, shared by every `robot-rl` command.

Each check runs before any expensive work (recording demos, building models, starting nodes) and raises
`UsageError` (exit 2) with one line naming the bad input and what would be right. Nothing here leaves anything on disk.
Heavy modules (torch, zarr, gymnasium) are imported only by the checks that need them.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from robot_rl.errors import RunError, UsageError

OBS_MODES = ("state", "pixels")
RUN_DIR_CONTENTS = "train_config.json, eval.jsonl and checkpoints/latest (made by `robot-rl train --out DIR`)"


# --- argparse types: a bad number is a one-line usage error before anything runs -------------
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0; got {text}")
    return value


def option_message(message: str) -> str:
    """A config check's message in command-line words: `steps must be >= 1` -> `--steps must be >= 1`."""
    return re.sub(r"^([a-z][a-z0-9_]*) must\b", lambda m: f"--{m[1].replace('_', '-')} must", message)


# --- names ------------------------------------------------------------------------------------
def check_task(task: str, option: str = "--task", env_id_hint: bool = False) -> None:
    """`task` is a simulated task; the message lists the valid ones."""
    from robot_rl.envs import TASK_ENV_IDS

    if task not in TASK_ENV_IDS:
        hint = " (or --env-id ID for a gymnasium env)" if env_id_hint else ""
        raise UsageError(f"unknown {option} {task!r}; choose one of {', '.join(sorted(TASK_ENV_IDS))}{hint}")


def check_device(device: str) -> None:
    """`device` names a torch device this machine has: cpu, cuda[:N] or mps."""
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        return
    if kind not in ("cuda", "mps") or (index and not index.isdigit()):
        raise UsageError(f"unknown --device {device!r}; use cpu, cuda, cuda:N or mps")
    import torch

    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UsageError("--device mps: this torch sees no Apple GPU (MPS); use --device cpu")
        return
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UsageError(
            f"--device {device}: torch {torch.__version__} ({build}) sees no CUDA GPU on this machine; use --device cpu"
        )
    if index and int(index) >= torch.cuda.device_count():
        raise UsageError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
        )


# --- paths ------------------------------------------------------------------------------------
def check_writable_dir(path: str | os.PathLike, option: str = "--out") -> None:
    """`path` is a directory that exists and is writable, or one that can be created (a probe directory is made in
    its nearest existing parent and removed at once; nothing else is created)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a directory; pass a directory path")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path} cannot be created: {parent} is a file, not a directory")
    try:  # what can be written is only known by trying: permissions, read-only mounts, pseudo file systems
        os.rmdir(tempfile.mkdtemp(prefix=".robot_rl-write-check-", dir=parent))
    except OSError as e:
        what = "is not writable" if parent == path else f"cannot be created: {parent} is not writable"
        raise UsageError(f"{option} {path} {what} ({e.strerror}); pass a directory you can write to") from e


def check_writable_file(path: str | os.PathLike, option: str = "--out") -> None:
    """`path` is a file that can be written: not a directory, its directory existing or creatable and writable."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; pass a file path")
    check_writable_dir(path.parent if str(path.parent) else Path("."), option=f"{option} {path}: its directory")


def check_exists(path: str | os.PathLike, option: str, kind: str | None = None) -> None:
    """`path` exists and, when `kind` is given, is a "file" or a "directory"."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{option} {path} does not exist; pass an existing {kind or 'path'}")
    if kind == "file" and path.is_dir():
        raise UsageError(f"{option} {path} is a directory; pass a file")
    if kind == "directory" and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; pass a directory")


def open_store(path: str | os.PathLike, option: str):
    """The episode store at `path`, opened read-only (metadata and episode ends only, no step data)."""
    from robot_rl.data.store import EpisodeStore, StoreError

    try:
        return EpisodeStore.open(path, mode="r")
    except StoreError as e:
        raise UsageError(f"{option}: {e}") from e


def check_run_dir(path: str | os.PathLike, option: str, need_checkpoint: bool = True) -> Path | None:
    """`path` is a training run (or, with `need_checkpoint`, one of its checkpoints); the checkpoint it means."""
    from robot_rl.learner.checkpoint import find_checkpoint

    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{option} {path} is not a directory; pass a run dir, which holds {RUN_DIR_CONTENTS}")
    if not need_checkpoint:
        if not (path / "train_config.json").is_file():
            raise UsageError(f"{option} {path} is not a training run: a run dir holds {RUN_DIR_CONTENTS}")
        return None
    try:
        return find_checkpoint(path)
    except FileNotFoundError as e:
        if (path / "train_config.json").exists():  # a run that has not checkpointed yet
            raise UsageError(f"{option} {path} has no checkpoint yet ({e})") from e
        raise UsageError(f"{option} {path} is not a training run: a run dir holds {RUN_DIR_CONTENTS}") from e


def check_new_run_dir(path: str | os.PathLike) -> None:
    """`--out` of a fresh run: creatable, and not a run that already holds episodes (which `--resume` continues)."""
    from robot_rl.training.resume import check_new_out

    check_writable_dir(path)
    episodes = Path(path) / "episodes"
    if (episodes / "zarr.json").is_file():
        open_store(episodes, "--out")  # a damaged store is reported as one line here
    check_new_out(Path(path))


# --- demos ------------------------------------------------------------------------------------
def check_demos(path: str, task: str | None, obs: str | None, obs_given: bool) -> str | None:
    """Check a `--demos` store against the run (episodes, task, observation mode); return the obs mode to train with.

    `task` / `obs` None skip those checks (a gymnasium `--env-id` has neither).
    A store of another observation mode is refused when `--obs` was typed; otherwise the demos' mode is taken and
    said so (one line), since demos recorded in one mode cannot feed a learner of the other."""
    store = open_store(path, "--demos")
    if store.n_episodes == 0:
        raise UsageError(
            f"--demos {path} holds 0 episodes; record some first (robot-rl demos record --task "
            f"{task or 'TASK'} --scripted --episodes 20 --out {path}) or leave out --demos"
        )
    from robot_rl import keys

    missing = [k for k in (keys.ACTION, keys.REWARD, keys.TERMINATED, keys.TRUNCATED) if k not in store.keys]
    if missing:  # a hand-made store, or one that lost an array before stores recorded their key set
        raise UsageError(
            f"--demos {path} has no {', '.join(missing)} step key(s) (its keys: {list(store.keys)}); "
            "pass a store recorded by robot-rl demos record or robot-rl train"
        )
    stored_task = store.meta.get("task")
    if task is not None and stored_task is not None and stored_task != task:
        raise UsageError(
            f"--demos {path} holds {stored_task} demos but --task is {task}; pass --task {stored_task} "
            f"or demos of {task}"
        )
    stored_obs = store.meta.get("obs_mode")
    if obs is None or stored_obs not in OBS_MODES or stored_obs == obs:
        return obs
    if obs_given:
        raise UsageError(
            f"--demos {path} holds {stored_obs} observations but --obs is {obs}; pass --obs {stored_obs} "
            f"or record demos with --obs {obs}"
        )
    print(f"[train] --demos {path} holds {stored_obs} observations: training with --obs {stored_obs}")
    return stored_obs


def check_env(env_id: str, obs: str, max_episode_steps: int | None, demos: str | None = None) -> None:
    """The env can be made here (registered id, its Python dependencies installed, Box actions): made once, closed.
    With `demos`, the store's observation and action shapes must be the env's (a store of the same task recorded
    with another observation layout failed only after the run directory was written)."""
    import gymnasium as gym

    from robot_rl.training.env_factory import make_env

    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise UsageError(
            f"unknown --env-id {env_id!r} ({e}); pass a registered gymnasium id, e.g. Pendulum-v1 "
            "or InvertedPendulum-v5"
        ) from e
    try:
        env = make_env(env_id, obs, max_episode_steps=max_episode_steps)
    except ModuleNotFoundError as e:
        extra = (
            " ('gymnasium[mujoco]'; ./run.sh setup installs it)"
            if "mujoco" in str(gym.spec(env_id).entry_point)
            else ""
        )
        raise RunError(
            f"{env_id} needs the Python module {e.name!r}, which is not installed: pip install it{extra}"
        ) from e
    except ValueError as e:
        raise UsageError(str(e)) from e
    try:
        if demos:
            _check_demos_fit(demos, env)
    finally:
        env.close()


def _check_demos_fit(path: str, env) -> None:
    """UsageError unless the --demos store holds the env's observation keys and shapes and its action size."""
    from robot_rl.cell import action_scale_mismatch
    from robot_rl.learner.core import check_demo_store
    from robot_rl.spaces import as_dict_space, obs_spec

    store = open_store(path, "--demos")
    task = (getattr(env.unwrapped, "task_meta", dict)() or {}).get("task")
    if task and (why := action_scale_mismatch(store.meta, task)):
        raise UsageError(f"--demos {path} {why}")
    try:
        check_demo_store(store, obs_spec(as_dict_space(env.observation_space)), env.action_space.shape[0])
    except ValueError as e:
        raise UsageError(f"--demos {path} does not fit this env: {e}") from e
