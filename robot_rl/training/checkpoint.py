"""Run checkpoints: `<run>/checkpoints/step_<N>/` plus an atomically written `<run>/checkpoints/latest` pointer.

A checkpoint holds everything the learner needs to continue, and nothing pickled:

    step_<N>/agent/             Agent.save (safetensors + json): nets, targets, optimisers, temperature, its RNG
    step_<N>/agent/policy/      the deployable part alone (what `robot-rl eval` and actors load; `policy_dir`)
    step_<N>/train_config.json  the TrainConfig of the run
    step_<N>/progress.json      loop counters (env steps, episodes, wall time, wandb id)
    step_<N>/rng.json           python, numpy and torch random states (`rng_state`)

The replay buffer is not saved: a resumed run refills it from the episode stores.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINTS = "checkpoints"
LATEST = "latest"


@dataclass
class Progress:
    """Counters of the main loop, saved with each checkpoint."""

    env_steps: int = 0  # online env steps taken (warm-up included)
    episodes: int = 0  # online episodes completed (and recorded)
    train_wall_s: float = 0.0  # seconds spent in the loop, summed over resumed segments
    wandb_run_id: str | None = None  # the wandb run to continue on resume

    @classmethod
    def from_json(cls, path: Path) -> Progress:
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


def restore_rng_state(state: dict[str, Any], np_rng: np.random.Generator,
                      generators: dict[str, torch.Generator]) -> None:
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


def save_checkpoint(run_dir: Path, agent, train_config: dict[str, Any], progress: Progress, rng: dict[str, Any],
                    keep: int) -> Path:
    """Write `step_<env_steps>/` completely, then point `latest` at it; keep the newest `keep` checkpoints."""
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step_{progress.env_steps}"
    tmp = root / f".tmp_step_{progress.env_steps}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    agent.save(tmp / "agent")
    _write_json(tmp / "train_config.json", train_config)
    _write_json(tmp / "progress.json", asdict(progress))
    _write_json(tmp / "rng.json", rng)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    pointer = root / (LATEST + ".tmp")
    pointer.write_text(final.name + "\n")
    os.replace(pointer, root / LATEST)  # atomic: `latest` always names a complete checkpoint
    _prune(root, keep, final)
    return final


def _prune(root: Path, keep: int, newest: Path) -> None:
    steps = sorted((int(p.name.split("_")[1]), p) for p in root.glob("step_*") if p.is_dir())
    for _, path in steps[:-keep] if keep > 0 else []:
        if path != newest:
            shutil.rmtree(path, ignore_errors=True)


def policy_dir(checkpoint: Path) -> Path:
    """Where a checkpoint keeps the deployable policy (Policy.load reads it)."""
    return Path(checkpoint) / "agent" / "policy"


def find_checkpoint(path: Path) -> Path:
    """A checkpoint dir from a run dir (its latest), a `checkpoints/` dir, or a `step_<N>` dir itself."""
    path = Path(path)
    if (path / "progress.json").exists():
        return path
    for root in (path / CHECKPOINTS, path):
        pointer = root / LATEST
        if pointer.exists():
            ckpt = root / pointer.read_text().strip()
            if not (ckpt / "progress.json").exists():
                raise FileNotFoundError(f"{pointer} names {ckpt}, which is not a complete checkpoint")
            return ckpt
    raise FileNotFoundError(
        f"no checkpoint at {path}: expected a run dir with {CHECKPOINTS}/{LATEST}, or a {CHECKPOINTS}/step_<N> dir"
    )
