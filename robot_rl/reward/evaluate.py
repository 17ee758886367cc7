"""Evaluating a saved classifier (image or VLM) on labelled stores: precision / recall at its threshold, PR curve,
and inference latency (`robot-rl reward eval`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robot_rl.reward.classifier import KIND, read_classifier_json
from robot_rl.reward.frames import load_frames
from robot_rl.reward.metrics import confusion, plot_pr
from robot_rl.reward.serve import RewardPredictor, time_inference


def load_predictor(path: str | Path, device: str = "cpu", threshold: float | None = None):
    """A predictor (`probs(images)`, `threshold`, `image_keys`) for any classifier directory this package writes."""
    kind = read_classifier_json(Path(path)).get("kind")
    if kind == KIND:
        return RewardPredictor.load(path, device, threshold)
    from robot_rl.reward import vlm

    if kind == vlm.KIND:
        return vlm.VLMPredictor.load(path, device, threshold)
    raise ValueError(f"{path}: unknown classifier kind {kind!r}; expected {KIND!r} or {vlm.KIND!r}")


def evaluate(
    path: str | Path,
    data: list[str],
    out: Path | None = None,
    batch: int = 64,
    latency_calls: int = 200,
    label_source: str | None = None,
    threshold: float | None = None,
) -> dict:
    """Metrics of the classifier at `path` on every frame of `data`; writes report/PR curve to `out` if given."""
    predictor = load_predictor(path, threshold=threshold)
    cameras = tuple(k[len("image_") :] for k in predictor.image_keys)
    frames = load_frames(data, cameras, label_source)
    probs = np.concatenate(
        [predictor.probs({k: v[i : i + batch] for k, v in frames.images.items()}) for i in range(0, len(frames), batch)]
    )
    report = {
        "classifier": str(path),
        "data": list(data),
        "frames": len(frames),
        "positive": int(frames.labels.sum()),
        "episodes": len(np.unique(frames.episode)),
        "at_threshold": confusion(probs, frames.labels, predictor.threshold),
        "at_0.5": confusion(probs, frames.labels, 0.5),
    }
    if latency_calls > 0:
        report["latency_batch1"] = time_inference(predictor, frames.images, batch_size=1, n=latency_calls)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_report.json").write_text(json.dumps(report, indent=1))
        if frames.labels.any() and not frames.labels.all():
            plot_pr(
                out / "eval_pr_curve.png",
                probs,
                frames.labels,
                predictor.threshold,
                f"{Path(path).name} on {len(frames)} frames",
            )
    return report
