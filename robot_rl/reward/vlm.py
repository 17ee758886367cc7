"""VLM success classifiers: a SigLIP/CLIP-class model from `transformers`, zero-shot from a text prompt or with a
linear head trained on its (frozen) image embeddings of the labelled frames.

    robot-rl reward train --kind vlm --vlm google/siglip-base-patch16-224 --data STORE --out DIR [--zero-shot]

The model loads from a local directory or a Hugging Face repo id already in the local cache, always with
`local_files_only=True`: nothing is downloaded (HF_HUB_OFFLINE is respected, and not needed). Its weights are
not copied: `<out>/classifier.json` names the model path, `<out>/head.safetensors` holds the head and the
prompt's text embedding.

- zero-shot: per camera, logit = scale * cos(image, prompt) + bias (SigLIP's sigmoid head; with a
  `negative_prompt`, the logit difference of the two prompts, as CLIP's softmax over two classes), averaged
  over cameras; the threshold is calibrated on held-out episodes like the image classifier's.
- linear: logistic regression on the concatenated, L2-normalised image embeddings of the cameras.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from tqdm import tqdm

from robot_rl.reward.classifier import CONFIG_FILE
from robot_rl.reward.frames import load_frames, split_episodes
from robot_rl.reward.labels import balanced_indices
from robot_rl.reward.metrics import calibrate_threshold, confusion, plot_pr

KIND = "vlm_classifier"
HEAD_FILE = "head.safetensors"
SIGLIP_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _need_transformers():
    try:
        import transformers
    except ImportError as e:
        raise ImportError("VLM reward classifiers need transformers: pip install 'robot_rl[reward]'") from e
    return transformers


def _features(out) -> torch.Tensor:
    """get_image_features / get_text_features return a tensor (transformers 4) or an output with pooler_output (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class VLM:
    """A loaded SigLIP/CLIP-class model with its tokenizer and image normalisation."""

    def __init__(self, path: str, device: str = "cpu"):
        tf = _need_transformers()
        try:
            self.model = tf.AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
            self.tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except OSError as e:
            raise FileNotFoundError(
                f"VLM {path!r} is neither a local model directory nor a repo id in the Hugging Face "
                f"cache (nothing is downloaded): {e}"
            ) from e
        self.path, self.device = str(path), device
        self.model.requires_grad_(False)
        vision = self.model.config.vision_config
        self.image_size = int(vision.image_size)
        mean, std = SIGLIP_MEAN_STD
        pre = Path(path) / "preprocessor_config.json"
        if pre.is_file():
            doc = json.loads(pre.read_text())
            mean, std = doc.get("image_mean", mean), doc.get("image_std", std)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.logit_scale = float(self.model.logit_scale.exp())
        self.logit_bias = float(getattr(self.model, "logit_bias", torch.zeros(1)).reshape(-1)[0])

    @torch.inference_mode()
    def image_embeddings(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> L2-normalised (B, D)."""
        x = torch.as_tensor(np.asarray(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        x = F.interpolate(
            x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
        )
        emb = _features(self.model.get_image_features(pixel_values=(x - self.mean) / self.std))
        return F.normalize(emb, dim=-1)

    @torch.inference_mode()
    def text_embedding(self, text: str) -> torch.Tensor:
        """(D,) L2-normalised embedding of one prompt (padded to the model's length, as SigLIP was trained)."""
        max_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 64))
        enc = self.tokenizer([text], padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
        kw = {"input_ids": enc["input_ids"].to(self.device)}
        if "attention_mask" in enc and self.model.config.model_type != "siglip":
            kw["attention_mask"] = enc["attention_mask"].to(self.device)
        return F.normalize(_features(self.model.get_text_features(**kw)), dim=-1)[0]


@dataclass(frozen=True)
class VLMTrainConfig:
    data: tuple[str, ...]  # labelled episode stores
    out: Path  # output directory
    model: str  # local model directory or cached HF repo id (SigLIP/CLIP-class)
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras to read
    prompt: str = "a robot gripper holding a red cube lifted above the table"  # text of success
    negative_prompt: str = ""  # optional text of failure (zero-shot: the logit difference)
    zero_shot: bool = False  # no head: only calibrate the threshold of the prompt's score
    steps: int = 300  # head training steps (full-batch-size balanced batches)
    batch_size: int = 128  # frames per head step
    lr: float = 1e-2  # AdamW learning rate of the head
    held_out_fraction: float = 0.25  # fraction of episodes held out
    target_precision: float = 0.95  # threshold target on held-out frames
    label_source: str | None = None  # "sim" / "teleop"; None = each store's saved choice
    seed: int = 0  # split and sampling
    device: str = "cpu"  # torch device
    progress: bool = True  # progress bars


class VLMPredictor:
    """Scores frames with a saved VLM classifier (same interface as RewardPredictor: probs, threshold, image_keys)."""

    def __init__(self, vlm: VLM, doc: dict, head: dict[str, torch.Tensor], threshold: float):
        self.vlm, self.doc, self.threshold = vlm, doc, float(threshold)
        self.image_keys = tuple(f"image_{c}" for c in doc["cameras"])
        self.head = {k: v.to(vlm.device) for k, v in head.items()}
        self.latencies_ms: list[float] = []

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", threshold: float | None = None) -> VLMPredictor:
        path = Path(path)
        doc = json.loads((path / CONFIG_FILE).read_text())
        if doc.get("kind") != KIND:
            raise ValueError(f"{path / CONFIG_FILE} holds a {doc.get('kind')!r}, not a {KIND!r}")
        head = load_file(str(path / HEAD_FILE))
        return cls(VLM(doc["model"], device), doc, head, doc["threshold"] if threshold is None else threshold)

    def logits_from_embeddings(self, emb: list[torch.Tensor]) -> torch.Tensor:
        """Per-camera (B, D) embeddings -> (B,) logits."""
        if self.doc["mode"] == "linear":
            return torch.cat(emb, dim=-1) @ self.head["weight"] + self.head["bias"]
        scale, bias = self.vlm.logit_scale, self.vlm.logit_bias
        per_cam = [scale * (e @ self.head["text_pos"]) + bias for e in emb]
        if "text_neg" in self.head:
            per_cam = [lp - (scale * (e @ self.head["text_neg"]) + bias) for lp, e in zip(per_cam, emb)]
        return torch.stack(per_cam).mean(0)

    @torch.inference_mode()
    def probs(self, images: dict[str, np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        emb = []
        for key in self.image_keys:
            x = np.asarray(images[key])
            emb.append(self.vlm.image_embeddings(x[None] if x.ndim == 3 else x))
        out = torch.sigmoid(self.logits_from_embeddings(emb)).cpu().numpy()
        self.latencies_ms.append(1e3 * (time.perf_counter() - t0))
        return out


def train_vlm_classifier(cfg: VLMTrainConfig) -> dict:
    """Embed every frame once, fit the head (unless zero-shot), calibrate, save; returns the report."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    vlm = VLM(cfg.model, cfg.device)
    frames = load_frames(list(cfg.data), cfg.cameras, cfg.label_source)
    train_rows, held_rows = split_episodes(frames, cfg.held_out_fraction, cfg.seed)
    emb = {
        k: torch.cat(
            [
                vlm.image_embeddings(v[i : i + 64])
                for i in tqdm(range(0, len(v), 64), desc=f"embed {k}", disable=not cfg.progress)
            ]
        )
        for k, v in frames.images.items()
    }  # key -> (N, D)
    t_embed = time.perf_counter() - t0
    head = {"text_pos": vlm.text_embedding(cfg.prompt)}
    if cfg.negative_prompt:
        head["text_neg"] = vlm.text_embedding(cfg.negative_prompt)
    mode = "zero_shot" if cfg.zero_shot else "linear"
    doc = {
        "kind": KIND,
        "model": vlm.path,
        "cameras": list(cfg.cameras),
        "prompt": cfg.prompt,
        "negative_prompt": cfg.negative_prompt,
        "mode": mode,
    }
    if mode == "linear":
        x = torch.cat([emb[f"image_{c}"] for c in cfg.cameras], dim=-1)  # (N, D * cameras)
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.zeros((), requires_grad=True)
        opt = torch.optim.AdamW([w, b], lr=cfg.lr, weight_decay=1e-4)
        labels = torch.from_numpy(frames.labels.astype(np.float32))
        train_labels = frames.labels[train_rows]
        for _ in tqdm(range(cfg.steps), desc="vlm head", disable=not cfg.progress):
            rows = torch.from_numpy(train_rows[balanced_indices(train_labels, cfg.batch_size, rng)])
            loss = F.binary_cross_entropy_with_logits(x[rows] @ w + b, labels[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head |= {"weight": w.detach().clone(), "bias": b.detach().reshape(1).clone()}
    predictor = VLMPredictor(vlm, doc, head, 0.5)
    with torch.inference_mode():
        logits = predictor.logits_from_embeddings([emb[f"image_{c}"][held_rows] for c in cfg.cameras])
    probs, held_labels = torch.sigmoid(logits).numpy(), frames.labels[held_rows]
    threshold, met = calibrate_threshold(probs, held_labels, cfg.target_precision)
    report = {
        "data": list(cfg.data),
        "model": vlm.path,
        "mode": mode,
        "cameras": list(cfg.cameras),
        "frames": {"train": len(train_rows), "held_out": len(held_rows), "held_out_positive": int(held_labels.sum())},
        "episodes": {"held_out": len(np.unique(frames.episode[held_rows]))},
        "target_precision": cfg.target_precision,
        "threshold": threshold,
        "target_met": met,
        "held_out_at_threshold": confusion(probs, held_labels, threshold),
        "held_out_at_0.5": confusion(probs, held_labels, 0.5),
        "seconds": {"embed": round(t_embed, 2), "total": round(time.perf_counter() - t0, 2)},
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.items()}, str(out / HEAD_FILE))
    doc |= {
        "threshold": threshold,
        "summary": {
            "held_out_at_threshold": report["held_out_at_threshold"],
            "train_config": {k: str(v) for k, v in asdict(cfg).items()},
        },
    }
    (out / CONFIG_FILE).write_text(json.dumps(doc, indent=1))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    plot_pr(out / "pr_curve.png", probs, held_labels, threshold, f"VLM ({mode}) on {len(held_rows)} held-out frames")
    return report
