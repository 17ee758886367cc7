"""An ONNX export as a base policy: `load_base_policy("base.onnx")`, run by onnxruntime (the `onnx` extra).

The graph takes one input per observation key it reads, named as the key (`state`, `image_front`), each a batch of
one as the env gives it (states float32 (1, D), images uint8 (1, H, W, C)), and its first output is an action
(1, A) or a chunk (1, K, A) in [-1, 1]. The layout is the TorchScript loader's JSON (robot_rl.bc.torchscript), in
the model's metadata_props under `robot_rl_base_layout` or beside it in `<file>.json`; chunks are executed as the
layout's `execution` says. `export_onnx` writes such a file from a torch module taking those tensors in
`obs_spec` order (exporting needs the `onnx` package as well).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robot_rl.bc.base import BaseActionError, BasePolicyError
from robot_rl.bc.torchscript import BaseLayout, ExportedPolicy, read_layout

LAYOUT_KEY = "robot_rl_base_layout"  # the metadata_props key holding the layout JSON
EXTRA = "pip install 'robot_rl[onnx]' (onnxruntime; exporting also needs onnx)"


class OnnxPolicy(ExportedPolicy):
    """An onnxruntime session on one CPU thread and its layout as a BasePolicy."""

    def __init__(self, session, layout: BaseLayout, source: str):
        super().__init__(layout, source)
        self.session = session
        names = [i.name for i in session.get_inputs()]
        unknown = [n for n in names if n not in layout.obs_spec]
        if unknown:
            raise BasePolicyError(
                f"{source} takes inputs {unknown} that its layout does not declare ({list(layout.obs_spec)}); name "
                "the graph's inputs after the observation keys it reads"
            )
        self.input_names = names  # the observation keys the graph reads, in its order

    @classmethod
    def load(cls, path: str | Path, threads: int = 1) -> OnnxPolicy:
        """The model at `path` with its layout (metadata_props, else `<path>.json`)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise BasePolicyError(f"loading the ONNX base {path} needs onnxruntime: {EXTRA}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 -- onnxruntime's load errors have no common base class
            raise BasePolicyError(f"{path} is not an ONNX model onnxruntime can run ({str(e)[:160]})") from None
        embedded = session.get_modelmeta().custom_metadata_map.get(LAYOUT_KEY, "")
        return cls(session, read_layout(embedded, Path(path)), str(path))

    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return self.session.run(None, {k: batch[k] for k in self.input_names})[0]
        except Exception as e:  # noqa: BLE001 -- onnxruntime's run errors: one readable line, the arm holds
            raise BaseActionError(f"the base {self.source} failed: {str(e).splitlines()[0][:200]}") from e


def export_onnx(module: torch.nn.Module, layout: BaseLayout, path: str | Path) -> Path:
    """Write `module` (forward(*tensors) in `layout.obs_spec` order, batch of one -> (1, A) or (1, K, A)) to `path`
    as ONNX with its layout embedded, by torch's TorchScript-based exporter (needs the `onnx` package)."""
    try:
        import onnx
    except ImportError:
        raise BasePolicyError(f"exporting to ONNX needs the onnx package: {EXTRA}") from None
    example = tuple(
        torch.zeros((1, *shape), dtype=torch.uint8 if len(shape) == 3 else torch.float32)
        for shape in layout.obs_spec.values()
    )
    path = Path(path)
    module = module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module, example, str(path), input_names=list(layout.obs_spec), output_names=["action"], dynamo=False
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = LAYOUT_KEY, layout.to_json()
    onnx.save(model, str(path))
    return path


__all__ = ["LAYOUT_KEY", "OnnxPolicy", "export_onnx"]
