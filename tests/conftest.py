"""Test-wide settings: nothing downloads, wandb stays offline, rendering is headless, torch stays small."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Child processes started by tests must not inherit the ROS wheels' re-exec guard (see shared/ROS2.md).
os.environ.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests share 2 cores; one intra-op thread keeps timings and results stable."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
