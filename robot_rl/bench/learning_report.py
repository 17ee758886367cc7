"""The report of `robot-rl bench learning`: per variant, the seeds' curves reduced to the figures a claim needs.

Per seed (from each run's `eval.jsonl` and `train_episodes.jsonl`, via `robot_rl.training.compare`): the first env
step whose evaluation reached the threshold, the lowest success of any later evaluation (a collapse shows here), the
final success and the wall-clock to the threshold. Per variant: how many seeds reached it, the median first step
and its spread (a seed that never reached it counts as later than every other), the median curve with its min–max
band, and the operator's median share of steps per 1 k env steps and, per seed, its share in the bins after the
first evaluation at the threshold (the "interventions that fade" goal: below `OPERATOR_SHARE_GOAL`). Each variant
after the first is also compared with the first seed by seed (earlier, the same, later to the threshold). Written as
`results.md` (with the command that made it), `results.json` and `results.png`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from robot_rl.training.compare import RunSummary, summarize_run

OPERATOR_SHARE_GOAL = 0.05  # once the policy is at the threshold, the operator should drive fewer steps than this


@dataclass
class SeedResult:
    seed: int
    first_at_threshold: int | None  # env steps of the first evaluation >= threshold (None: never)
    first_wall_s: float | None  # wall-clock of that evaluation
    min_after_first: float | None  # lowest success of the evaluations after the first at the threshold
    final_success: float | None  # success of the last evaluation
    env_steps: int  # of the last evaluation
    wall_s: float | None  # of the last evaluation
    curve: list[tuple[int, float | None]]  # (env steps, success)
    operator_share: list[tuple[int, float]]  # (bin start, share of steps the operator drove)

    def share_after_first(self) -> list[float]:
        """The operator's share in each bin that starts at or after the first evaluation at the threshold."""
        first = self.first_at_threshold
        return [] if first is None else [x for start, x in self.operator_share if start >= first]


@dataclass
class VariantResult:
    name: str
    seeds: list[SeedResult]
    reached: int  # seeds that reached the threshold
    median_first: float | None  # median first step (None when at most half the seeds reached it)
    first_range: tuple[int | None, int | None]  # earliest and latest first step (None: a seed never reached it)
    collapsed: int  # seeds that reached the threshold and later fell below `collapse_floor`
    median_final: float | None
    median_wall_s: float | None  # median wall-clock per run


def seed_result(summary: RunSummary, seed: int, threshold: float) -> SeedResult:
    rates = [rate for _, rate in summary.evals]
    first_i = next((i for i, r in enumerate(rates) if r is not None and r >= threshold), None)
    after = [r for r in rates[first_i + 1 :] if r is not None] if first_i is not None else []
    return SeedResult(
        seed=seed,
        first_at_threshold=summary.first_at_threshold,
        first_wall_s=summary.first_wall_s,
        min_after_first=min(after) if after else None,
        final_success=rates[-1] if rates else None,
        env_steps=summary.env_steps,
        wall_s=summary.wall_s,
        curve=summary.evals,
        operator_share=summary.operator_share,
    )


def _median_first(firsts: list[int | None]) -> float | None:
    """Median with never-reached seeds ranked last; None when the median itself never reached it (or no seeds)."""
    if not firsts:
        return None
    ranked = sorted(firsts, key=lambda x: math.inf if x is None else x)
    keyed = [math.inf if x is None else float(x) for x in ranked]
    m = statistics.median(keyed)
    return None if math.isinf(m) else m


def variant_result(name: str, seeds: list[SeedResult], collapse_floor: float) -> VariantResult:
    firsts = [s.first_at_threshold for s in seeds]
    reached = [f for f in firsts if f is not None]
    finals = [s.final_success for s in seeds if s.final_success is not None]
    walls = [s.wall_s for s in seeds if s.wall_s is not None]
    collapsed = sum(1 for s in seeds if s.min_after_first is not None and s.min_after_first < collapse_floor)
    return VariantResult(
        name=name,
        seeds=seeds,
        reached=len(reached),
        median_first=_median_first(firsts),
        first_range=(
            min(reached) if reached else None,
            max(reached) if reached and len(reached) == len(firsts) else None,
        ),
        collapsed=collapsed,
        median_final=statistics.median(finals) if finals else None,
        median_wall_s=statistics.median(walls) if walls else None,
    )


def collect(
    out: Path, variants: list[str], seeds: list[int], threshold: float, collapse_floor: float = 0.8
) -> list[VariantResult]:
    results = []
    for name in variants:
        per_seed = []
        for seed in seeds:
            run_dir = out / name / f"seed_{seed}"
            if (run_dir / "eval.jsonl").is_file():
                per_seed.append(seed_result(summarize_run(run_dir, f"{name}/seed_{seed}", threshold), seed, threshold))
        results.append(variant_result(name, per_seed, collapse_floor))
    return results


def _k(steps: float | int | None, never: str = "—") -> str:
    return never if steps is None else f"{steps / 1000:g}k"


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def median_share(seeds: list[SeedResult]) -> list[tuple[int, float]]:
    """The operator's share per bin, median over the seeds that have that bin."""
    bins: dict[int, list[float]] = {}
    for s in seeds:
        for start, share in s.operator_share:
            bins.setdefault(start, []).append(share)
    return [(start, statistics.median(v)) for start, v in sorted(bins.items())]


def paired(ref: VariantResult, other: VariantResult) -> tuple[int, int, int]:
    """Seeds in both where `other` reached the threshold earlier, at the same step, later than `ref` (never: last)."""
    ref_first = {s.seed: math.inf if s.first_at_threshold is None else s.first_at_threshold for s in ref.seeds}
    counts = [0, 0, 0]
    for s in other.seeds:
        if s.seed in ref_first:
            mine, theirs = math.inf if s.first_at_threshold is None else s.first_at_threshold, ref_first[s.seed]
            counts[0 if mine < theirs else 1 if mine == theirs else 2] += 1
    return counts[0], counts[1], counts[2]


def _share_after_lines(results: list[VariantResult], pct: str) -> list[str]:
    lines = []
    for v in results:
        seeds = [s for s in v.seeds if s.operator_share and s.first_at_threshold is not None]
        if not seeds:
            continue
        parts, below = [], 0
        for s in seeds:
            after = s.share_after_first()
            if after and max(after) < OPERATOR_SHARE_GOAL:
                below += 1
            parts.append(
                f"seed {s.seed} from {_k(s.first_at_threshold)}: "
                + (" ".join(f"{x:.2f}" for x in after) + f" (highest {max(after):.2f})" if after else "no full bin yet")
            )
        lines.append(
            f"- {v.name}: " + "; ".join(parts) + f" — every bin below {OPERATOR_SHARE_GOAL:.0%} in {below} of "
            f"{len(seeds)} seeds that reached {pct}"
        )
    if lines:
        lines = ["", f"Operator's share per 1 k env steps after each seed's first {pct}:", "", *lines]
    return lines


def markdown(results: list[VariantResult], threshold: float, steps: int, command: str, collapse_floor: float) -> str:
    pct = f"{threshold:.0%}"
    lines = [
        f"`{command}`",
        "",
        f"| variant | seeds ≥ {pct} | first env step ≥ {pct} per seed | median (earliest–latest) | "
        f"lowest success after it (< {collapse_floor:.0%}: collapsed) | final success, median (min–max) | "
        "wall-clock per run, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in results:
        per_seed = ", ".join(
            f"{s.seed}: {_k(s.first_at_threshold, f'not by {_k(min(s.env_steps, steps))}')}" for s in v.seeds
        )  # a run's last episode may end a few steps past the budget
        lo, hi = v.first_range
        spread = f"{_k(lo)}–{_k(hi, f'not by {_k(steps)}')}" if lo is not None else "—"
        finals = [s.final_success for s in v.seeds if s.final_success is not None]
        final = f"{_rate(v.median_final)} ({_rate(min(finals))}–{_rate(max(finals))})" if finals else "—"
        after = ", ".join(_rate(s.min_after_first) for s in v.seeds if s.first_at_threshold is not None) or "—"
        wall = "—" if v.median_wall_s is None else f"{v.median_wall_s / 60:.1f} min"
        lines.append(
            f"| {v.name} | {v.reached}/{len(v.seeds)} | {per_seed} | "
            f"{_k(v.median_first, f'not by {_k(steps)}')} ({spread}) | {after}"
            f"{f' ({v.collapsed} collapsed)' if v.collapsed else ''} | {final} | {wall} |"
        )
    shares = [(v.name, median_share(v.seeds)) for v in results]
    if any(share for _, share in shares):
        lines += ["", "Operator's share of training steps per 1 k env steps (median over seeds):", ""]
        for name, share in shares:
            if share:
                lines.append(f"- {name}: " + " ".join(f"{_k(s)}: {x:.2f}" for s, x in share))
    lines += _share_after_lines(results, pct)
    if len(results) > 1 and results[0].seeds:
        ref = results[0]
        lines += [
            "",
            f"Seed by seed against {ref.name}, the first env step ≥ {pct} (a seed that never reached it last):",
            "",
        ]
        for v in results[1:]:
            earlier, same, later = paired(ref, v)
            if earlier + same + later:
                lines.append(f"- {v.name}: earlier in {earlier}, the same in {same}, later in {later}")
    lines += ["", "Success per evaluation, per seed:", ""]
    for v in results:
        for s in v.seeds:
            at = (
                f"{_k(s.curve[0][0])}, {_k(s.curve[1][0])} … {_k(s.curve[-1][0])}"
                if len(s.curve) > 2
                else ", ".join(_k(x) for x, _ in s.curve)
            )
            lines.append(f"- {v.name} seed {s.seed} (at {at}): " + " ".join(_rate(r) for _, r in s.curve))
    return "\n".join(lines) + "\n"


def to_json(results: list[VariantResult]) -> list[dict]:
    return [asdict(v) for v in results]


def plot(results: list[VariantResult], png_path: Path, threshold: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_operator = any(s.operator_share for v in results for s in v.seeds)
    n_axes = 2 if with_operator else 1
    fig, axes = plt.subplots(n_axes, 1, figsize=(8, 3.8 * n_axes), squeeze=False, sharex=True)
    ax = axes[0][0]
    for i, v in enumerate(results):
        color = f"C{i % 10}"
        grid: dict[int, list[float]] = {}
        for s in v.seeds:
            xs = [x for x, r in s.curve if r is not None]
            ys = [r for _, r in s.curve if r is not None]
            ax.plot(xs, ys, color=color, lw=0.6, alpha=0.35)
            for x, y in zip(xs, ys):
                grid.setdefault(x, []).append(y)
        xs = sorted(grid)
        if xs:
            ax.fill_between(xs, [min(grid[x]) for x in xs], [max(grid[x]) for x in xs], color=color, alpha=0.12)
            ax.plot(
                xs,
                [statistics.median(grid[x]) for x in xs],
                "o-",
                color=color,
                lw=2,
                ms=3,
                label=f"{v.name} (median of {len(v.seeds)}; {v.reached} reach {threshold:.0%})",
            )
    ax.axhline(threshold, color="gray", lw=0.8, ls=":")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("success rate (evaluation)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    if with_operator:
        ax = axes[1][0]
        for i, v in enumerate(results):
            share = median_share(v.seeds)
            if share:
                ax.step([s for s, _ in share], [x for _, x in share], where="post", color=f"C{i % 10}", label=v.name)
        ax.axhline(0.05, color="gray", lw=0.8, ls=":")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("operator share of steps\n(median, per 1k env steps)")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1][0].set_xlabel("env steps")
    fig.tight_layout()
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)


def write_report(
    out: Path,
    results: list[VariantResult],
    threshold: float,
    steps: int,
    command: str,
    title: str,
    collapse_floor: float = 0.8,
) -> str:
    text = markdown(results, threshold, steps, command, collapse_floor)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(
        json.dumps({"command": command, "threshold": threshold, "steps": steps, "variants": to_json(results)}, indent=1)
        + "\n"
    )
    plot(results, out / "results.png", threshold, title)
    return text
