"""Precision / recall of success probabilities, threshold calibration to a target precision, and the PR figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pr_curve(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Precision and recall at every distinct threshold (success = prob >= threshold), thresholds descending."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-probs, kind="stable")
    p, y = probs[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]  # the last row of each distinct threshold
    n_pos = max(int(labels.sum()), 1)
    return {
        "threshold": p[last],
        "precision": tp[last] / (tp[last] + fp[last]),
        "recall": tp[last] / n_pos,
        "tp": tp[last],
        "fp": fp[last],
    }


def confusion(probs: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    pred, y = np.asarray(probs) >= threshold, np.asarray(labels).astype(bool)
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    return {
        "threshold": float(threshold),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "accuracy": (tp + tn) / max(len(y), 1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def near_label_flips(labels: np.ndarray, episode: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: frames within k frames of a label flip of their episode (the k last before it, the k first after).

    A flip's exact frame is uncertain by about a step (sim: the cube crosses the height between two frames; operator:
    the person's reaction time), so these frames are left out of threshold calibration (`TrainConfig`).
    """
    labels, episode = np.asarray(labels).astype(np.int8), np.asarray(episode)
    out = np.zeros(len(labels), bool)
    if k <= 0:
        return out
    for e in np.unique(episode):
        rows = np.flatnonzero(episode == e)
        for f in np.flatnonzero(np.diff(labels[rows])) + 1:
            out[rows[max(f - k, 0) : f + k]] = True
    return out


def calibrate_threshold(
    probs: np.ndarray, labels: np.ndarray, target_precision: float, prefer_half: bool = False
) -> tuple[float, bool]:
    """The threshold with the most recall whose precision reaches the target, and whether one did.

    Going down from the highest threshold, precision must stay at or above the target all the way (from the
    first threshold that reaches it): a lone lucky dip further down, where precision recovers after falling
    below the target, is not taken. If no threshold reaches the target: the one of the best precision.
    The threshold returned lies in the gap below the chosen one (see `_with_margin`; `prefer_half`: 0.5 if inside).
    """
    if not (np.asarray(labels) == 1).any():
        raise ValueError("cannot calibrate a threshold on held-out frames without positives")
    curve = pr_curve(probs, labels)
    ok = curve["precision"] >= target_precision
    if ok.any():
        first = int(np.argmax(ok))
        below = np.flatnonzero(~ok[first:])
        last = first + (int(below[0]) - 1 if len(below) else len(ok) - first - 1)
        run = slice(first, last + 1)
        pick = first + int(np.argmax(curve["recall"][run]))  # the first (highest) threshold of the run's best recall
        return _with_margin(curve["threshold"], pick, prefer_half), True
    best = int(np.flatnonzero(curve["precision"] == curve["precision"].max())[-1])
    return _with_margin(curve["threshold"], best, prefer_half), False


def _with_margin(thresholds: np.ndarray, i: int, prefer_half: bool = False) -> float:
    """A threshold between threshold i and the next lower one, so the same frames pass with room either side: the
    halfway point in logit space; with `prefer_half`, 0.5 (the decision point of a classifier trained on balanced
    batches) where it lies strictly in that gap.

    Why 0.5 (opt-in, `TrainConfig.calibration_prefer_half`): a well-separated held-out set leaves a wide gap, e.g.
    (0.03, 0.9999), whose logit midpoint (~0.95) sits near the saturated positives and cuts recall on unseen
    episodes. pick_cube, 480 training frames, 24 unseen episodes (record seed 100, train seed 1, with
    `calibration_skip_flip_frames` 1): logit midpoint 0.913 -> precision 0.973, recall 0.871; 0.5 -> 0.955, 0.909
    (record seed 0, train seed 0: 0.966, 0.962 -> 0.957, 0.962).
    """
    if i + 1 >= len(thresholds):
        return float(thresholds[i])
    if prefer_half and thresholds[i + 1] < 0.5 < thresholds[i]:
        return 0.5
    hi, lo = np.clip(thresholds[i], 1e-7, 1 - 1e-7), np.clip(thresholds[i + 1], 1e-7, 1 - 1e-7)
    mid = 0.5 * (np.log(hi / (1 - hi)) + np.log(lo / (1 - lo)))
    return float(1 / (1 + np.exp(-mid)))


def plot_pr(path: Path, probs: np.ndarray, labels: np.ndarray, threshold: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = pr_curve(probs, labels)
    at = confusion(probs, labels, threshold)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.plot(curve["recall"], curve["precision"], "-", color="tab:blue", label="held-out episodes")
    ax.plot(
        [at["recall"]],
        [at["precision"]],
        "o",
        color="tab:red",
        label=f"threshold {threshold:.3f}: P {at['precision']:.3f} R {at['recall']:.3f}",
    )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
