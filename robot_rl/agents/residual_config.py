"""The residual learner's settings (`ResidualConfig`), apart from `residual.py` so configs import without torch.

`robot_rl.training.config` nests it in `TrainConfig`, whose fields become the `robot-rl train` options; building
that parser must not import torch (see `robot_rl.agents`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class ResidualConfig:
    """The residual learner's settings beyond AgentConfig (saved with the agent and, scale only, the policy)."""

    residual_scale: float = 0.5  # bound of the correction in normalised action units: |total - base| <= this per dim
    critic_only_steps: int = 1000  # critic updates before the actor's first update (the critics learn the base first)

    def __post_init__(self) -> None:
        if not 0.0 < self.residual_scale <= 2.0:
            raise ValueError(f"residual_scale must be in (0, 2] (actions span [-1, 1]), got {self.residual_scale}")
        if self.critic_only_steps < 0:
            raise ValueError(f"critic_only_steps must be >= 0, got {self.critic_only_steps}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
