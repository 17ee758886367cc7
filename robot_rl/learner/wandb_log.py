"""wandb as the experiment log: online when the user is logged in, offline files under the run dir otherwise."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

WANDB_MODES = ("auto", "online", "offline", "disabled")


def resolve_mode(requested: str) -> str:
    """ "auto" -> $WANDB_MODE if set, else "online" if credentials exist (WANDB_API_KEY, `wandb login`),
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


IN_USE_WAIT_S = 20.0  # how long a resume waits for a killed process's wandb service to let go of the run


class WandbLog:
    """A wandb run (or nothing, when disabled) that train and eval metrics are logged to, keyed by env steps."""

    def __init__(
        self, run_dir: Path, mode: str, project: str, name: str, config: dict[str, Any], resume_id: str | None = None
    ):
        self.mode = resolve_mode(mode)
        self.run = None
        if self.mode == "disabled":
            return
        import wandb

        kw = dict(project=project, name=name, dir=str(run_dir), config=config, mode=self.mode)
        deadline = time.monotonic() + IN_USE_WAIT_S
        while self.run is None:
            try:
                self.run = wandb.init(**kw, id=resume_id, resume="allow" if resume_id else None)
            except Exception as err:  # noqa: BLE001 (wandb raises several types; only "in use" is retried)
                if not resume_id or "in use" not in str(err):
                    raise
                # a process killed with -9 leaves its wandb service holding the run for a while: wait for it,
                # then give up on continuing that wandb run rather than on training
                if time.monotonic() > deadline:
                    print(
                        f"[wandb] run {resume_id} is still held by a dead process after {IN_USE_WAIT_S:.0f} s; "
                        "logging to a new wandb run (training resumes as usual)"
                    )
                    resume_id = None
                else:
                    time.sleep(2.0)

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
