"""The image success classifier: the learner's encoder family + an MLP head, one logit per frame.

    cameras' uint8 images (B, H, W, 3) -> resize to image_size -> shared trunk (small conv, or frozen
    ResNet-10) -> one neck per camera -> concat (B, latent * n_cameras) -> MLP -> logit (B,)

Saved as `<dir>/classifier.safetensors` (weights) + `<dir>/classifier.json` (config, threshold, training
summary); `load_classifier(dir)` rebuilds it. Nothing executes on load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from robot_rl import keys
from robot_rl.nets.encoders import ConvTrunk, FlattenNeck, ResNet10, SpatialEmbeddingNeck, trunk_output_shape

ENCODERS = ("conv", "resnet10")
WEIGHTS_FILE = "classifier.safetensors"
CONFIG_FILE = "classifier.json"
KIND = "image_classifier"


@dataclass(frozen=True)
class ClassifierConfig:
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras whose images the classifier reads (store keys image_<cam>)
    encoder: str = "conv"  # "conv" (small DrQ conv, trained) or "resnet10" (ResNet-10, frozen; the neck is trained)
    encoder_weights: str | None = None  # resnet10: pretrained weights (local path or cached HF repo id); None = random
    image_size: int = 64  # images are resized (area) to image_size x image_size before the encoder
    channels: int = 32  # conv: channels of each of the 4 conv layers (the learner's trunk has 32)
    latent_dim: int = 64  # per-camera latent size
    hidden_dim: int = 256  # MLP head width
    dropout: float = 0.1  # dropout in the MLP head (training only)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r}; choose one of {ENCODERS}")
        if not self.cameras:
            raise ValueError("cameras must name at least one camera, e.g. ('front',)")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels; got {self.image_size}")

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(keys.image_key(c) for c in self.cameras)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> uint8 (B, size, size, 3) by area averaging (unchanged if already that size)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(size, size), mode="area")
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class SuccessClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        shape = (cfg.image_size, cfg.image_size, 3)
        self.trunk = ResNet10() if cfg.encoder == "resnet10" else ConvTrunk(channels=cfg.channels)
        if cfg.encoder == "resnet10" and cfg.encoder_weights:
            from robot_rl.nets.pretrained import load_resnet10_weights

            load_resnet10_weights(self.trunk, cfg.encoder_weights)
        c, h, w = trunk_output_shape(self.trunk, shape)
        self.necks = nn.ModuleDict(
            {
                key: SpatialEmbeddingNeck(c, h, w, cfg.latent_dim)
                if cfg.encoder == "resnet10"
                else FlattenNeck(c * h * w, cfg.latent_dim)
                for key in cfg.image_keys
            }
        )
        self.head = nn.Sequential(
            nn.Linear(cfg.latent_dim * len(cfg.cameras), cfg.hidden_dim),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, 1),
        )
        if cfg.encoder == "resnet10":
            self.trunk.requires_grad_(False)
            self.trunk.eval()

    def train(self, mode: bool = True) -> SuccessClassifier:
        super().train(mode)
        if self.cfg.encoder == "resnet10":
            self.trunk.eval()  # frozen: batch-norm statistics stay fixed
        return self

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """{image_<cam>: uint8 (B, H, W, 3)} -> logits (B,)."""
        missing = [k for k in self.cfg.image_keys if k not in images]
        if missing:
            raise KeyError(
                f"the classifier reads {list(self.cfg.image_keys)}; missing {missing} (given {sorted(images)})"
            )
        latents = []
        for key in self.cfg.image_keys:
            x = resize_images(images[key], self.cfg.image_size)
            if self.cfg.encoder == "resnet10":
                with torch.no_grad():
                    fmap = self.trunk(x)
            else:
                fmap = self.trunk(x)
            latents.append(self.necks[key](fmap))  # (B, latent_dim)
        return self.head(torch.cat(latents, dim=-1)).squeeze(-1)


@dataclass
class SavedClassifier:
    """What `classifier.json` holds besides the weights."""

    config: ClassifierConfig
    threshold: float = 0.5  # success when probability >= threshold (calibrated on held-out episodes)
    summary: dict = field(default_factory=dict)  # training data, held-out metrics


def save_classifier(out: Path, model: SuccessClassifier, threshold: float, summary: dict) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(out / WEIGHTS_FILE))
    doc = {"kind": KIND, "config": asdict(model.cfg), "threshold": float(threshold), "summary": summary}
    (out / CONFIG_FILE).write_text(json.dumps(doc, indent=1))


def read_classifier_json(path: Path) -> dict:
    path = Path(path)
    file = path / CONFIG_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {path}: expected the --out directory of `robot-rl reward train`")
    return json.loads(file.read_text())


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[SuccessClassifier, SavedClassifier]:
    """The classifier saved in directory `path` (eval mode) and its threshold/summary."""
    path = Path(path)
    doc = read_classifier_json(path)
    if doc.get("kind") != KIND:
        raise ValueError(f"{path / CONFIG_FILE} holds a {doc.get('kind')!r}, not an {KIND!r}")
    cfg_dict = dict(doc["config"])
    cfg_dict["cameras"] = tuple(cfg_dict["cameras"])
    cfg_dict["encoder_weights"] = None  # the saved state dict already holds the trunk's weights
    cfg = ClassifierConfig(**cfg_dict)
    model = SuccessClassifier(cfg)
    state = load_file(str(path / WEIGHTS_FILE))
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return model, SavedClassifier(cfg, float(doc["threshold"]), doc.get("summary", {}))
