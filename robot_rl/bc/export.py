"""`robot-rl bc export DIR --format onnx|torchscript`: a BC checkpoint as one self-contained file with its layout.

The file runs without robot_rl's BC code (any TorchScript or onnxruntime host) and loads back as a base with
`load_base_policy(FILE)`: observation keys in, the chunk (1, K, A) clipped to [-1, 1] out, executed as the
checkpoint's `execution` says. A flow base is exported deterministic, integrated from zero noise (its
`flow_noise_scale` 0): noise-space steering needs the checkpoint itself.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from robot_rl.bc.policy import BCPolicy
from robot_rl.bc.torchscript import BaseLayout, layout_files

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # format -> the file suffix load_base_policy knows it by


class _Chunks(nn.Module):
    """The BC policy as obs tensors -> clipped chunk (1, K, A): positional (ONNX) or a dict (TorchScript)."""

    def __init__(self, policy: BCPolicy, by_name: bool):
        super().__init__()
        self.policy, self.keys, self.by_name = policy, list(policy.obs_spec), by_name

    def forward(self, *tensors):
        obs = tensors[0] if self.by_name else dict(zip(self.keys, tensors))
        return self.policy(obs).clamp(-1.0, 1.0)


def export_base(policy_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Export the BC checkpoint `policy_dir` as `fmt` (onnx or torchscript) to `out` (default: beside it,
    `<dir>/base.onnx` or `<dir>/base.pt`); the path written."""
    policy = BCPolicy.load(Path(policy_dir)).eval()
    out = Path(out) if out is not None else Path(policy_dir) / f"base{FORMATS[fmt]}"
    layout = BaseLayout(
        {k: list(v) for k, v in policy.obs_spec.items()},
        policy.action_dim,
        policy.cfg.execution,
        float(policy.cfg.ensemble_decay),
    )
    if fmt == "onnx":
        from robot_rl.bc.onnx_base import export_onnx

        return export_onnx(_Chunks(policy, by_name=False), layout, out)
    example = {
        k: torch.zeros((1, *s), dtype=torch.uint8 if len(s) == 3 else torch.float32) for k, s in layout.obs_spec.items()
    }
    with torch.no_grad():
        traced = torch.jit.trace(_Chunks(policy, by_name=True), (example,), strict=False)
    torch.jit.save(
        traced,
        str(out),
        _extra_files=layout_files(layout.obs_spec, layout.action_dim, layout.execution, layout.ensemble_decay),
    )
    return out


__all__ = ["FORMATS", "export_base"]
