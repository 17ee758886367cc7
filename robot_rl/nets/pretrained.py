"""Loading pretrained ResNet-10 weights from a local path or the Hugging Face cache. Nothing is ever downloaded.

Accepted: a `.safetensors` file, a directory holding one (model.safetensors preferred), or a Hugging Face repo id
("org/name") already in the local cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).
Key names may be this package's (torchvision-style: conv1, bn1, layer1.conv1, ...) or those of a transformers
`ResNetModel` (embedder.embedder.convolution, encoder.stages.0.layers.0.layer.0.convolution, ...), optionally
under a `resnet.` prefix; classifier weights are ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

_HF_RENAMES = (  # transformers ResNet (basic blocks, one per stage) -> robot_rl ResNet10
    (r"^embedder\.embedder\.convolution\.", "conv1."),
    (r"^embedder\.embedder\.normalization\.", "bn1."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.shortcut\.convolution\.", lambda m: f"layer{int(m[1]) + 1}.downsample.0."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.shortcut\.normalization\.", lambda m: f"layer{int(m[1]) + 1}.downsample.1."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.layer\.0\.convolution\.", lambda m: f"layer{int(m[1]) + 1}.conv1."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.layer\.0\.normalization\.", lambda m: f"layer{int(m[1]) + 1}.bn1."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.layer\.1\.convolution\.", lambda m: f"layer{int(m[1]) + 1}.conv2."),
    (r"^encoder\.stages\.(\d)\.layers\.0\.layer\.1\.normalization\.", lambda m: f"layer{int(m[1]) + 1}.bn2."),
)


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _safetensors_in(directory: Path) -> Path | None:
    preferred = directory / "model.safetensors"
    if preferred.is_file():
        return preferred
    found = sorted(directory.glob("*.safetensors"))
    return found[0] if found else None


def resolve_weights(spec: str) -> Path:
    """The .safetensors file `spec` names (file, directory, or cached HF repo id); a clear error otherwise."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        found = _safetensors_in(path)
        if found is None:
            raise FileNotFoundError(f"encoder_weights directory {path} holds no .safetensors file")
        return found
    repo_dir = hf_cache_dir() / ("models--" + spec.replace("/", "--"))
    if spec.count("/") == 1 and repo_dir.is_dir():
        ref = repo_dir / "refs" / "main"
        snapshots = (
            [repo_dir / "snapshots" / ref.read_text().strip()]
            if ref.is_file()
            else sorted((repo_dir / "snapshots").glob("*"))
        )
        for snap in snapshots:
            found = _safetensors_in(snap) if snap.is_dir() else None
            if found is not None:
                return found
    raise FileNotFoundError(
        f"encoder_weights {spec!r} is neither a local .safetensors file or directory nor a Hugging Face repo id in the "
        f"cache {hf_cache_dir()} (nothing is downloaded); give a local path, or encoder_weights=None for random init"
    )


def _rename(key: str) -> str:
    key = re.sub(r"^(resnet|model)\.", "", key)
    for pattern, repl in _HF_RENAMES:
        new = re.sub(pattern, repl, key)
        if new != key:
            return new
    return key


def load_resnet10_weights(model: nn.Module, spec: str) -> Path:
    """Load weights into `model` (a ResNet10) strictly; returns the file used. A model of 3 stages takes a full
    ResNet-10's file without its fourth stage."""
    path = resolve_weights(spec)
    tensors = {_rename(k): v for k, v in load_file(str(path)).items() if not k.startswith("classifier")}
    if getattr(model, "layer4", True) is None:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("layer4.")}
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path} does not hold ResNet-10 weights: missing {missing[:6]}, unexpected {unexpected[:6]}")
    for k, v in tensors.items():
        if v.shape != own[k].shape:
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, ResNet-10 expects {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
    return path


def save_resnet10_weights(model: nn.Module, path: str | Path) -> None:
    """Write a ResNet10's weights as a .safetensors file this module can load back."""
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))
