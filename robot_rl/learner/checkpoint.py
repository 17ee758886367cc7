"""Run checkpoints: `<run>/checkpoints/step_<N>/`, each verified by its MANIFEST.json, plus a `latest` pointer.

A checkpoint holds everything the learner needs to continue, and nothing pickled:

    step_<N>/agent/             Agent.save (safetensors + json): nets, targets, optimisers, temperature, its RNG
    step_<N>/agent/policy/      the deployable part alone (what `robot-rl eval` and actors load; `policy_dir`)
    step_<N>/train_config.json  the TrainConfig of the run
    step_<N>/progress.json      loop counters (env steps, episodes, wall time, wandb id)
    step_<N>/rng.json           python, numpy and torch random states (`rng_state`)
    step_<N>/MANIFEST.json      size and sha256 of every other file, written last

The replay buffer is not saved: a resumed run refills it from the episode stores.

Commit protocol: the files are written into `.tmp_step_<N>/`, synced to disk, the manifest is written (temporary
file, fsync, rename), then the directory is renamed to `step_<N>` and `latest` updated. `find_checkpoint` does not
trust names or the pointer: it tries the checkpoints newest first and takes the first whose files all match
their manifest and parse, reporting each one it skipped in one line. A checkpoint without a manifest that has
all its files and parses (one written before checksums) is used with a warning that flipped bytes in it cannot
be detected; one missing files is half-written and skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from robot_rl.errors import RunError

CHECKPOINTS = "checkpoints"
LATEST = "latest"
MANIFEST = "MANIFEST.json"  # {"format", "files": {relative path: {"bytes", "sha256"}}}, written last
MANIFEST_FORMAT = "robot_rl.checkpoint_manifest/1"
TMP_PREFIX = ".tmp_"  # a checkpoint being written; renamed to step_<N> once its manifest is on disk
REQUIRED_FILES = (
    "progress.json",
    "rng.json",
    "train_config.json",
    "agent/config.json",
    "agent/agent_state.json",
    "agent/agent.safetensors",
)
LEGACY_NOTE = (
    f"has no {MANIFEST} (written before checkpoints carried checksums): its files are all there and "
    "parse, but flipped bytes in them cannot be detected"
)


class CheckpointError(RunError):
    """A run's checkpoints exist but none can be resumed from (corrupt, truncated, half-written)."""


@dataclass
class RunCounters:
    """Counters of the main loop, saved with each checkpoint."""

    env_steps: int = 0  # online env steps taken (warm-up included)
    episodes: int = 0  # online episodes completed (and recorded)
    train_wall_s: float = 0.0  # seconds spent in the loop, summed over resumed segments
    wandb_run_id: str | None = None  # the wandb run to continue on resume

    @classmethod
    def from_json(cls, path: Path) -> RunCounters:
        return cls(**json.loads(Path(path).read_text()))


def rng_state(np_rng: np.random.Generator, generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Python, numpy (the loop's Generator and the legacy global), torch (global and `generators`, e.g. the
    replay buffers' samplers) random states, JSON-ready."""
    version, internal, gauss = random.getstate()
    legacy = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy_loop": np_rng.bit_generator.state,
        "numpy_global": [legacy[0], legacy[1].tolist(), *legacy[2:]],
        "torch_cpu": torch.get_rng_state().tolist(),
        "torch_generators": {name: g.get_state().tolist() for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(
    state: dict[str, Any], np_rng: np.random.Generator, generators: dict[str, torch.Generator]
) -> None:
    """Inverse of rng_state: set every generator back to the saved point."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_rng.bit_generator.state = state["numpy_loop"]
    name, keys, *rest = state["numpy_global"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(torch.tensor(state["torch_cpu"], dtype=torch.uint8))
    for name, g in generators.items():
        if name not in state["torch_generators"]:
            have = sorted(state["torch_generators"])
            raise ValueError(f"the checkpoint has no random state for {name!r} (it has {have})")
        g.set_state(torch.tensor(state["torch_generators"][name], dtype=torch.uint8))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["torch_cuda"]])


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_and_sync(path: Path) -> str:
    """The file's sha256, after forcing its bytes to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_manifest(ckpt: Path) -> None:
    """Sync every file under `ckpt` to disk and record its size and sha256 in MANIFEST.json (synced, renamed in)."""
    files = {}
    for path in sorted(p for p in ckpt.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(ckpt).as_posix()] = {"bytes": path.stat().st_size, "sha256": _sha256_and_sync(path)}
    for folder in {p.parent for p in ckpt.rglob("*")} | {ckpt}:
        _fsync_dir(folder)
    tmp = ckpt / (MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"format": MANIFEST_FORMAT, "files": files}, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(ckpt / MANIFEST)
    _fsync_dir(ckpt)


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why `ckpt` cannot be resumed from (one phrase: "agent/agent.safetensors checksum mismatch"), or None.

    With a MANIFEST.json every listed file must be there with its size and sha256; without one (written before
    checksums, or a copy that lost it) the required files must be there and parse (`LEGACY_NOTE`).
    """
    manifest_path = ckpt / MANIFEST
    if manifest_path.is_file():
        try:
            files = json.loads(manifest_path.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"{MANIFEST} unreadable: {e}"
        for name in REQUIRED_FILES:
            if name not in files:
                return f"{MANIFEST} does not list {name}"
        for name, want in files.items():
            path = ckpt / name
            if not path.is_file():
                return f"{name} missing"
            if path.stat().st_size != want["bytes"]:
                return f"{name} has {path.stat().st_size} bytes, {want['bytes']} written (truncated or overwritten)"
            with open(path, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != want["sha256"]:
                    return f"{name} checksum mismatch"
    else:
        missing = [name for name in REQUIRED_FILES if not (ckpt / name).is_file()]
        if missing:
            return f"no {MANIFEST} and {', '.join(missing)} missing: half-written"
    return _parse_problem(ckpt)


def _parse_problem(ckpt: Path) -> str | None:
    """Whether the JSON files and the safetensors header parse (what a checksum cannot vouch for in old files)."""
    for name in REQUIRED_FILES:
        path = ckpt / name
        try:
            if name.endswith(".json"):
                json.loads(path.read_text())
            else:
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
        except Exception as e:  # json, safetensors and OS errors alike: the file cannot be read back
            return f"{name} does not parse ({' '.join(str(e).split())[:120]})"
    return None


def step_of(ckpt: Path) -> int:
    """The env step in a checkpoint dir's name (`step_400` -> 400)."""
    return int(ckpt.name.split("_", 1)[1])


def checkpoint_dirs(root: Path) -> list[Path]:
    """The `step_<N>` dirs under a `checkpoints/` dir, newest (highest N) first."""
    found = [p for p in Path(root).glob("step_*") if p.is_dir() and p.name.split("_", 1)[1].isdigit()]
    return sorted(found, key=step_of, reverse=True)


def save_checkpoint(
    run_dir: Path, agent, train_config: dict[str, Any], progress: RunCounters, rng: dict[str, Any], keep: int
) -> Path:
    """Write `step_<env_steps>/` under a temporary name, its MANIFEST.json last, rename it into place, point
    `latest` at it; keep the newest `keep` checkpoints."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step_{progress.env_steps}"
    tmp = root / f"{TMP_PREFIX}step_{progress.env_steps}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    agent.save(tmp / "agent")
    _write_json(tmp / "train_config.json", train_config)
    _write_json(tmp / "progress.json", asdict(progress))
    _write_json(tmp / "rng.json", rng)
    write_manifest(tmp)  # the commit point: a step_<N> without a valid manifest is never resumed from
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    _fsync_dir(root)
    pointer = root / (LATEST + ".tmp")
    pointer.write_text(final.name + "\n")
    os.replace(pointer, root / LATEST)  # for readers of the pointer; find_checkpoint verifies the dirs themselves
    _prune(root, keep, final)
    return final


def _prune(root: Path, keep: int, newest: Path) -> None:
    """Drop leftovers of interrupted writes, checkpoints newer than `newest` (a resume from an older one abandoned
    them: they are damaged or from a past the run no longer has) and all but the newest `keep`. `newest`, just
    written and complete, is never deleted, so the run always keeps a complete checkpoint."""
    for leftover in root.glob(TMP_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
    older = []
    for path in checkpoint_dirs(root):
        if step_of(path) > step_of(newest):
            shutil.rmtree(path, ignore_errors=True)
        elif path != newest:
            older.append(path)
    for path in older[max(keep - 1, 0) :] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)


def policy_dir(checkpoint: Path) -> Path:
    """Where a checkpoint keeps the deployable policy (Policy.load reads it)."""
    return Path(checkpoint) / "agent" / "policy"


def _warn(line: str) -> None:
    print(f"[checkpoint] {line}", file=sys.stderr, flush=True)


def find_checkpoint(path: Path, warn: Callable[[str], None] | None = _warn) -> Path:
    """The newest complete checkpoint of a run dir or a `checkpoints/` dir, or a `step_<N>` dir itself (verified).

    Checkpoints are tried newest first; each one skipped (corrupt, truncated, half-written) is reported through
    `warn` in one line naming the one used instead. FileNotFoundError when there is no checkpoint at all (a run
    killed before its first one), CheckpointError when there are some but none is complete.
    """
    path = Path(path)
    if (
        (path / MANIFEST).exists()
        or (path / "progress.json").exists()
        or (path.name.startswith("step_") and path.parent.name == CHECKPOINTS)
    ):
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError(
                f"checkpoint {path} is unusable: {problem}; give its run dir to use the newest "
                "complete checkpoint instead"
            )
        return path
    root = next((r for r in (path / CHECKPOINTS, path) if r.is_dir() and checkpoint_dirs(r)), None)
    if root is None:
        raise FileNotFoundError(
            f"no checkpoint at {path}: expected a run dir with {CHECKPOINTS}/step_<N> dirs, or "
            f"a {CHECKPOINTS}/step_<N> dir"
        )
    skipped: list[tuple[Path, str]] = []
    for ckpt in checkpoint_dirs(root):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            for bad, why in skipped if warn is not None else []:
                warn(f"checkpoint {bad.name} is {_kind(why)} ({why}); using {ckpt.name}")
            if warn is not None and not (ckpt / MANIFEST).exists():
                warn(f"checkpoint {ckpt.name} {LEGACY_NOTE}")
            return ckpt
        skipped.append((ckpt, problem))
    details = "; ".join(f"{p.name}: {why}" for p, why in skipped)
    run = root.parent if root.name == CHECKPOINTS else root
    raise CheckpointError(
        f"no complete checkpoint in {root} ({details}); to restart from step 0 keeping the "
        f"recorded episodes run: mv {root} {root}.bad && robot-rl train --resume {run}"
    )


def _kind(problem: str) -> str:
    if "half-written" in problem or "missing" in problem:
        return "incomplete"
    return "truncated" if "bytes" in problem else "corrupt"
