"""The evaluation log (`<run>/eval.jsonl`, one JSON object per evaluation) and its learning-curve figure.

The training-episode log (`<run>/train_episodes.jsonl`) is the learner's: `robot_rl.learner.episode_log`."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

EVAL_LOG = "eval.jsonl"
CURVE_PNG = "curve.png"


def append_eval(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one evaluation (must hold `env_steps`) as a JSON line, flushed to disk before returning."""
    if "env_steps" not in record:
        raise ValueError(f"an evaluation record needs 'env_steps'; got keys {sorted(record)}")
    with open(Path(run_dir) / EVAL_LOG, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def read_evals(run_dir: Path) -> list[dict[str, Any]]:
    """All evaluations of a run, in the order written (empty if none yet)."""
    path = Path(run_dir) / EVAL_LOG
    if not path.exists():
        return []
    return read_jsonl(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log. A torn last line (a writer killed mid-line) is skipped with a warning on
    stderr; a damaged line before the last is an error naming it (ValueError)."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < len(lines) - 1:
                raise ValueError(f"{path}: line {i + 1} is not JSON ({e}); fix or delete that line") from e
            print(f"warning: {path}: skipping its torn last line ({len(line)} characters, not JSON)", file=sys.stderr)
    return records


def truncate_evals(run_dir: Path, max_env_steps: int) -> None:
    """Drop evaluations taken after `max_env_steps` (a resumed run re-measures them from its checkpoint)."""
    records = [r for r in read_evals(run_dir) if r["env_steps"] <= max_env_steps]
    path = Path(run_dir) / EVAL_LOG
    if path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        tmp.replace(path)


def plot_curve(
    records: list[dict[str, Any]],
    png_path: Path,
    title: str,
    success_label: str = "success rate (deterministic policy)",
) -> None:
    """Success rate (if the env reports success) and mean return vs env steps, as a PNG.

    Records with `intervention_rate_recent` (runs with an operator) add that rate of the latest training
    episodes to the success axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["env_steps"] for r in records]
    has_success = any(r.get("success_rate") is not None for r in records)
    n_axes = 2 if has_success else 1
    fig, axes = plt.subplots(1, n_axes, figsize=(5.5 * n_axes, 4), squeeze=False)
    if has_success:
        ax = axes[0][0]
        ax.plot(
            steps, [r.get("success_rate", math.nan) for r in records], "o-", color="tab:green", label="success rate"
        )
        if any(r.get("intervention_rate_recent") is not None for r in records):
            rate = [r.get("intervention_rate_recent") for r in records]
            ax.plot(
                steps,
                [math.nan if x is None else x for x in rate],
                "s--",
                color="tab:orange",
                label="intervention rate (recent training episodes)",
            )
            ax.legend(loc="best", fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(success_label)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    ax = axes[0][-1]
    mean = [r["return_mean"] for r in records]
    std = [r.get("return_std", 0.0) for r in records]
    ax.plot(steps, mean, "o-", color="tab:blue")
    low, high = [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)]
    ax.fill_between(steps, low, high, color="tab:blue", alpha=0.2)
    ax.set_ylabel("episode return")
    ax.set_xlabel("env steps")
    ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)
