"""`robot-rl compare RUN...`: training runs side by side, from the logs every run directory holds.

Per run: the evaluated success curve, the first env step at which it reached a threshold (90 % by default), and
the operator's share of training steps per bin of env steps (intervened steps / steps of the training episodes
that ended in the bin, from `train_episodes.jsonl`). One PNG: success against env steps on top, the operator's
share below when any run had an operator. This is how the with/without-operator and residual/SAC
comparisons in the README are read off.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robot_rl.learner import episode_log
from robot_rl.training.curves import EVAL_LOG, read_evals


@dataclass
class RunSummary:
    label: str
    run_dir: str
    evals: list[tuple[int, float | None]]  # (env steps, success rate); None where the env reports no success
    first_at_threshold: int | None  # env steps of the first evaluation with success >= threshold
    first_wall_s: float | None  # wall-clock of that evaluation
    operator_share: list[tuple[int, float]]  # (bin start in env steps, intervened steps / steps)
    env_steps: int  # of the last evaluation
    wall_s: float | None  # of the last evaluation

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize_run(run_dir: Path, label: str | None = None, threshold: float = 0.9, bin_steps: int = 1000) -> RunSummary:
    run_dir = Path(run_dir)
    if not (run_dir / EVAL_LOG).is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run directory: it has no {EVAL_LOG} "
            "(robot-rl train --out DIR writes one at every evaluation)"
        )
    if bin_steps < 1:
        raise ValueError(f"bin_steps must be >= 1, got {bin_steps}")
    evals = read_evals(run_dir)
    if not evals:
        raise ValueError(f"{run_dir / EVAL_LOG} holds no evaluation yet")
    curve = [(int(r["env_steps"]), r.get("success_rate")) for r in evals]
    first_i = next((i for i, (_, rate) in enumerate(curve) if rate is not None and rate >= threshold), None)
    first = None if first_i is None else curve[first_i][0]
    first_wall = None if first_i is None else evals[first_i].get("wall_s")
    bins: dict[int, list[int]] = {}
    for ep in episode_log.read(run_dir):
        total = bins.setdefault(int(ep["env_steps"]) // bin_steps * bin_steps, [0, 0])
        total[0] += int(ep.get("interventions", 0))
        total[1] += int(ep["steps"])
    # bins with at least half a bin of steps: the run's last, partial bin often holds a single episode
    share = [(start, n_int / n) for start, (n_int, n) in sorted(bins.items()) if n * 2 >= bin_steps]
    if not any(n_int for n_int, _ in bins.values()):
        share = []  # a run without an operator
    return RunSummary(
        label=label or run_dir.name,
        run_dir=str(run_dir),
        evals=curve,
        first_at_threshold=first,
        first_wall_s=first_wall,
        operator_share=share,
        env_steps=curve[-1][0],
        wall_s=evals[-1].get("wall_s"),
    )


def format_table(runs: list[RunSummary], threshold: float, bin_steps: int) -> str:
    lines = []
    width = max(len(r.label) for r in runs)
    for r in runs:
        curve = " ".join("-" if rate is None else f"{rate:.2f}".rstrip("0").rstrip(".") for _, rate in r.evals)
        steps = " ".join(f"{s / 1000:g}k" for s, _ in r.evals)
        first = (
            f"{r.first_at_threshold / 1000:g}k"
            if r.first_at_threshold is not None
            else f"not by {r.env_steps / 1000:g}k"
        )
        at = f" at {r.first_wall_s / 60:.0f} min" if r.first_wall_s is not None else ""
        run = f"run: {r.env_steps / 1000:g}k steps" + (f", {r.wall_s / 60:.0f} min" if r.wall_s is not None else "")
        lines.append(f"{r.label:{width}}  first >= {threshold:.0%}: {first:>12}{at} ({run})")
        lines.append(f"{'':{width}}  success at {steps}: {curve}")
        if r.operator_share:
            share = " ".join(f"{s / 1000:g}k:{x:.2f}" for s, x in r.operator_share)
            lines.append(f"{'':{width}}  operator share per {bin_steps / 1000:g}k steps: {share}")
    return "\n".join(lines)


def plot_compare(runs: list[RunSummary], png_path: Path, threshold: float, bin_steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_operator = [r for r in runs if r.operator_share]
    n_axes = 2 if with_operator else 1
    fig, axes = plt.subplots(n_axes, 1, figsize=(7, 3.6 * n_axes), squeeze=False, sharex=True)
    ax = axes[0][0]
    for i, r in enumerate(runs):
        steps = [s for s, _ in r.evals]
        ax.plot(
            steps,
            [math.nan if x is None else x for x in (rate for _, rate in r.evals)],
            "o-",
            color=f"C{i % 10}",
            label=r.label,
        )
    ax.axhline(threshold, color="gray", lw=0.8, ls=":")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("success rate (evaluation)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    if with_operator:
        ax = axes[1][0]
        for i, r in enumerate(runs):
            if r.operator_share:
                ax.step(
                    [s for s, _ in r.operator_share] + [r.operator_share[-1][0] + bin_steps],
                    [x for _, x in r.operator_share] + [r.operator_share[-1][1]],
                    where="post",
                    color=f"C{i % 10}",
                    label=r.label,
                )
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"operator share of steps\n(per {bin_steps / 1000:g}k env steps)")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1][0].set_xlabel("env steps")
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)
