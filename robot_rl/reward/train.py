"""Training the image success classifier: episode-wise split, balanced batches, random shift, threshold calibration.

    robot-rl reward train --data STORE[,STORE] --out DIR

writes into DIR: classifier.safetensors + classifier.json (loadable with `load_classifier`), report.json
(held-out precision / recall at the chosen threshold and at 0.5, counts, timings) and pr_curve.png.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from robot_rl.nets.encoders import random_shift
from robot_rl.reward.classifier import ClassifierConfig, SuccessClassifier, resize_images, save_classifier
from robot_rl.reward.frames import Frames, load_frames, split_episodes
from robot_rl.reward.labels import balanced_indices
from robot_rl.reward.metrics import calibrate_threshold, confusion, near_label_flips, plot_pr

REPORT_FILE = "report.json"
PR_FILE = "pr_curve.png"


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...]  # episode stores with images (labels: their success key + sidecar edits)
    out: Path  # output directory
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)  # the model
    steps: int = 600  # gradient steps
    batch_size: int = 64  # frames per step, half positive, half negative
    lr: float = 3e-4  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    aug_pad_px: int = 4  # random shift of up to this many pixels (at image_size), training only
    held_out_fraction: float = (
        0.25  # fraction of episodes held out (split separately among episodes with/without success)
    )
    target_precision: float = 0.95  # the threshold is the lowest whose held-out precision reaches this
    # held-out frames within this many frames of a label flip are left out of calibration (still reported). Opt-in:
    # one ambiguous frame (cube ~4.9 cm up, label 0, prob 0.85) forced the threshold to 0.984 and recall on 24 unseen
    # pick_cube episodes to 0.794; with 1 and calibration_prefer_half: precision 0.955, recall 0.909 (2 seeds measured;
    # on the 450-frame test fixture, 1 lets a flip frame through: held-out precision 0.944, so not the default yet)
    calibration_skip_flip_frames: int = 0
    calibration_prefer_half: bool = False  # threshold 0.5 when it lies in the calibrated gap (metrics._with_margin)
    label_source: str | None = None  # "sim" or "teleop" (see robot_rl.reward.labels); None = each store's saved choice
    seed: int = 0  # split, initialisation and sampling
    device: str = "cpu"  # torch device
    progress: bool = True  # show a progress bar


def to_tensors(frames: Frames, rows: np.ndarray, device: str) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v[rows]).to(device) for k, v in frames.images.items()}


@torch.no_grad()
def predict_probs(model: SuccessClassifier, frames: Frames, device: str = "cpu", batch: int = 256) -> np.ndarray:
    """Success probability of every frame, (N,)."""
    model.eval()
    out = []
    for start in range(0, len(frames), batch):
        rows = np.arange(start, min(start + batch, len(frames)))
        out.append(torch.sigmoid(model(to_tensors(frames, rows, device))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_classifier(cfg: TrainConfig) -> dict:
    """Train, calibrate and save; returns the report (also written to out/report.json)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    frames = load_frames(list(cfg.data), cfg.classifier.cameras, cfg.label_source)
    train_rows, held_rows = split_episodes(frames, cfg.held_out_fraction, cfg.seed)
    frames.images = {
        k: resize_array(v, cfg.classifier.image_size) for k, v in frames.images.items()
    }  # once, not per step
    train, held = frames.subset(train_rows), frames.subset(held_rows)
    t_load = time.perf_counter() - t0

    model = SuccessClassifier(cfg.classifier).to(cfg.device)
    t1 = time.perf_counter()
    losses = _fit(model, train, cfg, rng)
    t_train = time.perf_counter() - t1

    probs = predict_probs(model, held, cfg.device)
    calib = ~near_label_flips(held.labels, held.episode, cfg.calibration_skip_flip_frames)
    if not held.labels[calib].any():
        calib[:] = True  # every held-out positive is next to a flip: calibrate on all frames
    threshold, met = calibrate_threshold(
        probs[calib], held.labels[calib], cfg.target_precision, cfg.calibration_prefer_half
    )
    report = {
        "data": list(cfg.data),
        "cameras": list(cfg.classifier.cameras),
        "encoder": cfg.classifier.encoder,
        "frames": {
            "train": len(train),
            "train_positive": int(train.labels.sum()),
            "held_out": len(held),
            "held_out_positive": int(held.labels.sum()),
            "calibration": int(calib.sum()),
        },
        "episodes": {
            "train": len(np.unique(train.episode)),
            "held_out": len(np.unique(held.episode)),
            "held_out_names": [frames.episode_names[i] for i in np.unique(held.episode)],
        },
        "target_precision": cfg.target_precision,
        "threshold": threshold,
        "target_met": met,
        "held_out_at_threshold": confusion(probs, held.labels, threshold),
        "held_out_at_0.5": confusion(probs, held.labels, 0.5),
        "calibration_at_threshold": confusion(probs[calib], held.labels[calib], threshold),  # flip frames left out
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
        "seconds": {"load": round(t_load, 2), "train": round(t_train, 2)},
        "steps": cfg.steps,
        "note": "the threshold is chosen on the same held-out frames it is reported on; "
        "check it on other episodes with `robot-rl reward eval`",
    }
    out = Path(cfg.out)
    save_classifier(
        out,
        model,
        threshold,
        {k: report[k] for k in ("data", "frames", "episodes", "held_out_at_threshold")}
        | {"train_config": {k: v for k, v in asdict(cfg).items() if k not in ("classifier", "out")}},
    )
    plot_pr(
        out / PR_FILE,
        probs,
        held.labels,
        threshold,
        f"{cfg.classifier.encoder} classifier, {len(held)} held-out frames ({report['episodes']['held_out']} episodes)",
    )
    (out / REPORT_FILE).write_text(json.dumps(report, indent=1, default=str))
    return report


def _fit(model: SuccessClassifier, train: Frames, cfg: TrainConfig, rng: np.random.Generator) -> list[float]:
    """`cfg.steps` AdamW steps on class-balanced, randomly shifted batches of `train`; the loss of every step."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    bar = tqdm(range(cfg.steps), desc="reward classifier", unit="step", disable=not cfg.progress)
    losses: list[float] = []
    model.train()
    for _ in bar:
        rows = balanced_indices(train.labels, cfg.batch_size, rng)
        images = {k: random_shift(v, cfg.aug_pad_px) for k, v in to_tensors(train, rows, cfg.device).items()}
        target = torch.from_numpy(train.labels[rows].astype(np.float32)).to(cfg.device)
        loss = F.binary_cross_entropy_with_logits(model(images), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
    bar.close()
    return losses


def resize_array(images: np.ndarray, size: int, chunk: int = 512) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, size, size, 3), as the classifier resizes (area averaging)."""
    if images.shape[1:3] == (size, size):
        return images
    return (
        np.concatenate(
            [resize_images(torch.from_numpy(images[i : i + chunk]), size).numpy() for i in range(0, len(images), chunk)]
        )
        if len(images)
        else images[:, :size, :size]
    )
