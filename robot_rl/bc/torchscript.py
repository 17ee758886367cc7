"""A TorchScript export as a base policy: `load_base_policy("base.pt")` (docs/base-policies.md).

The module's `forward(obs: Dict[str, Tensor]) -> Tensor` takes a batch of one observation, each key as the env gives
it with a leading batch dim (states float32 (1, D), images uint8 (1, H, W, C)), and returns an action (1, A) or a
chunk (1, K, A) in [-1, 1]. Its layout travels with it, as JSON, either embedded in the file
(`torch.jit.save(m, path, _extra_files=layout_files(obs_spec, action_dim))`) or beside it in `<file>.json`:

    {"format": "robot_rl.base_layout/1", "obs_spec": {"state": [28]}, "action_dim": 4,
     "execution": "replay", "ensemble_decay": 0.1}

`execution` (optional, default replay) is how its chunks are executed: `ChunkExecution`, as for a BC policy. A
module with a `reset()` method (`@torch.jit.export`) has it called at every episode start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robot_rl.bc.base import BaseActionError, BasePolicyError, checked_action
from robot_rl.bc.config import EXECUTIONS
from robot_rl.bc.policy import ChunkExecution

LAYOUT_FORMAT = "robot_rl.base_layout/1"
LAYOUT_FILE = "robot_rl_base_layout.json"  # the name of the layout inside a TorchScript file's extra files


@dataclass
class BaseLayout:
    """What a base reads and returns: observation keys and shapes, action size, how chunks are executed."""

    obs_spec: dict[str, list[int]]  # {key: shape}: states (D,), images (H, W, C) uint8
    action_dim: int  # A
    execution: str = "replay"  # "replay" (chunk open loop) or "ensemble" (temporal ensembling)
    ensemble_decay: float = 0.1  # temporal ensembling weight exp(-decay * i) of the i-th newest prediction

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": LAYOUT_FORMAT,
                "obs_spec": self.obs_spec,
                "action_dim": self.action_dim,
                "execution": self.execution,
                "ensemble_decay": self.ensemble_decay,
            }
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> BaseLayout:
        """Parse and check a layout JSON; anything malformed is a one-line BasePolicyError naming `source`."""
        want = (
            f'expected {{"format": "{LAYOUT_FORMAT}", "obs_spec": {{key: shape}}, "action_dim": A}} '
            "(docs/base-policies.md)"
        )
        try:
            d = json.loads(text)
        except ValueError:
            raise BasePolicyError(f"the layout of {source} is not JSON; {want}") from None
        spec = d.get("obs_spec") if isinstance(d, dict) else None
        ok = (
            isinstance(d, dict)
            and d.get("format") == LAYOUT_FORMAT
            and isinstance(spec, dict)
            and spec
            and all(isinstance(v, list) and v and all(isinstance(n, int) and n > 0 for n in v) for v in spec.values())
            and isinstance(d.get("action_dim"), int)
            and d["action_dim"] > 0
            and d.get("execution", "replay") in EXECUTIONS
            and isinstance(d.get("ensemble_decay", 0.1), (int, float))
            and d.get("ensemble_decay", 0.1) >= 0
        )
        if not ok:
            raise BasePolicyError(f"the layout of {source} is malformed ({str(d)[:120]}); {want}")
        return cls(
            {k: list(v) for k, v in spec.items()},
            d["action_dim"],
            d.get("execution", "replay"),
            float(d.get("ensemble_decay", 0.1)),
        )


def layout_files(
    obs_spec: dict[str, list[int]], action_dim: int, execution: str = "replay", ensemble_decay: float = 0.1
) -> dict[str, str]:
    """The `_extra_files` of `torch.jit.save` that embed a base's layout in its TorchScript file."""
    return {
        LAYOUT_FILE: BaseLayout(
            {k: list(v) for k, v in obs_spec.items()}, action_dim, execution, ensemble_decay
        ).to_json()
    }


class ExportedPolicy:
    """An exported module and its layout as a BasePolicy: one prediction per step or per chunk (its execution).
    Subclasses run the module (`_run`: a batch of one observation -> (1, A) or (1, K, A)); TorchScript here, ONNX
    in robot_rl.bc.onnx_base."""

    def __init__(self, layout: BaseLayout, source: str):
        self.layout, self.source = layout, source
        self.obs_spec, self.action_dim = layout.obs_spec, layout.action_dim  # the declared layout (check_layout)
        self.execution: ChunkExecution | None = None  # made at the first prediction, when K is known

    def _run(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        if self.execution is not None:
            self.execution.reset()

    def predict_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """One unbatched observation -> chunk (K, A) (K = 1 for a module that returns one action)."""
        missing = [k for k in self.obs_spec if k not in obs]
        if missing:
            raise BaseActionError(f"observation lacks {missing}; the base {self.source} reads {list(self.obs_spec)}")
        out = np.asarray(self._run({k: np.asarray(obs[k])[None] for k in self.obs_spec}), np.float32)
        chunk = out[0] if out.ndim == 3 else out  # (1, K, A) -> (K, A); (1, A) is a chunk of one
        if out.ndim not in (2, 3) or out.shape[0] != 1 or chunk.shape[-1] != self.action_dim:
            raise BaseActionError(
                f"the base {self.source} returned shape {tuple(out.shape)}; its layout says (1, "
                f"{self.action_dim}) or (1, K, {self.action_dim})"
            )
        return chunk

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """This step's action (A,) float32 in [-1, 1]; call reset() at every episode start."""
        chunk = None
        if self.execution is None or self.execution.needs_prediction():
            chunk = np.clip(self.predict_chunk(obs), -1.0, 1.0)
            if self.execution is None:
                self.execution = ChunkExecution(len(chunk), self.layout.execution, self.layout.ensemble_decay)
            elif len(chunk) != self.execution.chunk_size:
                raise BaseActionError(
                    f"the base {self.source} returned a chunk of {len(chunk)} actions after chunks of "
                    f"{self.execution.chunk_size}; it must return chunks of one size"
                )
        return checked_action(self.execution.step(chunk), self.action_dim)


def read_layout(embedded: str, path: Path) -> BaseLayout:
    """The layout embedded in an exported file (`embedded`, "" when none), else the one in `<path>.json`."""
    sidecar = Path(f"{path}.json")
    text = embedded or (sidecar.read_text() if sidecar.is_file() else "")
    if not text:
        raise BasePolicyError(
            f"{path} carries no layout: embed it (robot_rl.bc.torchscript.layout_files(obs_spec, action_dim); "
            f"docs/base-policies.md) or write {sidecar.name} beside it"
        )
    return BaseLayout.from_json(text, str(path))


class TorchScriptPolicy(ExportedPolicy):
    """A TorchScript module and its layout as a BasePolicy."""

    def __init__(
        self,
        module: torch.jit.ScriptModule,
        layout: BaseLayout,
        device: str | torch.device = "cpu",
        source: str = "TorchScript base",
    ):
        super().__init__(layout, source)
        self.module, self.device = module.eval(), torch.device(device)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> TorchScriptPolicy:
        """The module at `path` with its embedded layout, else the one in `<path>.json`."""
        path = Path(path)
        extra = {LAYOUT_FILE: ""}
        try:
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except (RuntimeError, ValueError) as e:
            raise BasePolicyError(
                f"{path} is not a TorchScript module ({str(e).splitlines()[0][:120]}); save one with torch.jit.save"
            ) from None
        return cls(module, read_layout(extra[LAYOUT_FILE], path), device, str(path))

    def reset(self) -> None:
        super().reset()
        if hasattr(self.module, "reset"):
            self.module.reset()

    @torch.no_grad()
    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {k: torch.as_tensor(v).to(self.device) for k, v in batch.items()}
        try:
            return self.module(tensors).float().cpu().numpy()
        except (RuntimeError, ValueError, TypeError, AttributeError) as e:  # TorchScript's errors, its output
            raise BaseActionError(f"the base {self.source} failed: {str(e).splitlines()[0][:200]}") from e


__all__ = [
    "LAYOUT_FILE",
    "LAYOUT_FORMAT",
    "BaseLayout",
    "ExportedPolicy",
    "TorchScriptPolicy",
    "layout_files",
    "read_layout",
]
