"""wandb as the experiment log: online when the user is logged in, offline files under the run dir otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WANDB_MODES = ("auto", "online", "offline", "disabled")


def resolve_mode(requested: str) -> str:
    """"auto" -> $WANDB_MODE if set, else "online" if credentials exist (WANDB_API_KEY, `wandb login`),
    else "offline"."""
    if requested not in WANDB_MODES:
        raise ValueError(f"unknown wandb mode {requested!r}; choose one of {list(WANDB_MODES)}")
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    import wandb

    return "online" if wandb.login(prompt=False, verify=False) else "offline"


class WandbLog:
    """A wandb run (or nothing, when disabled) that train and eval metrics are logged to, keyed by env steps."""

    def __init__(self, run_dir: Path, mode: str, project: str, name: str, config: dict[str, Any],
                 resume_id: str | None = None):
        self.mode = resolve_mode(mode)
        self.run = None
        if self.mode == "disabled":
            return
        import wandb

        self.run = wandb.init(
            project=project, name=name, dir=str(run_dir), config=config, mode=self.mode,
            id=resume_id, resume="allow" if resume_id else None,
        )

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run.id

    def log(self, metrics: dict[str, float], env_steps: int) -> None:
        if self.run is not None:
            self.run.log({**metrics, "env_steps": env_steps}, step=env_steps)

    def log_video(self, path: Path, env_steps: int) -> None:
        if self.run is not None:
            import wandb

            self.run.log({"eval/video": wandb.Video(str(path), format="mp4")}, step=env_steps)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
