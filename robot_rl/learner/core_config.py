"""LearnerCoreConfig: the settings the learning core (`robot_rl.learner.core.Learner`) reads, declared once.

Both process configs inherit it -- `robot_rl.training.config.TrainConfig` (`robot-rl train` options) and
`robot_rl.learner.config.LearnerConfig` (the learner node's ROS parameters) -- so each field, its comment (the
option's help) and its check exist in one place, and the option and parameter names stay the same flat names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# What `robot-rl train` sets on top of AgentConfig's defaults. Measured on pick_cube from state with 20 scripted
# demos, 128-wide nets, batches of 128, UTD 2, init_temperature 0.01, no entropy backup, seed 0, on 2 busy CPU cores
# (deterministic eval success): n_step 1 and 3e-4 learning rates: 0 % at 6k env steps (and at 7k in a second run);
# n_step 3, 3e-4 and a discrete gripper: 50 % at 4k; n_step 3 and 1e-3: 85 % at 4k, 90 % at 5k, 100 % from 7k to 10k
# (20 episodes per eval; two runs, identical curves). 3-step returns carry the sparse 0/1 reward back through a
# ~17-step grasp sooner. (AgentConfig has since adopted n_step 3; it stays here so the run's recipe is explicit.)
TUNED_AGENT = dict(
    hidden_dims=(128, 128), batch_size=128, utd_ratio=2, n_step=3, init_temperature=0.01, actor_lr=1e-3, critic_lr=1e-3
)


@dataclass
class LearnerCoreConfig:
    """Replay mix, corrections, seeds, device and checkpoints of one learner."""

    seed: int = 0  # seeds torch, numpy and the replay samplers (in-process: also env resets and evaluation)
    device: str = "cpu"  # torch device of the learner: cpu or cuda
    demo_fraction: float = 0.5  # fraction of each batch drawn from the demos (0 without demos)
    replay_capacity: int = (
        0  # online replay size in transitions (0 = auto: 200k, fewer if images would not fit in 30% of RAM)
    )
    intervention_to_demos: bool = (
        True  # HIL-SERL: intervened transitions also go to the demo replay (mixed into batches)
    )
    # robot_rl.learner.corrections.add_own_success; opt-in
    successes_to_demos: bool = False  # self-imitation: episodes the policy succeeds in alone join the demo replay (BC)
    intervention_penalty: float = 0.0  # RLIF: reward (<= 0) added in replay to the policy's step before each take-over
    keep_checkpoints: int = 3  # newest checkpoints kept on disk
    wandb_project: str = "robot_rl"  # wandb project name

    def __post_init__(self) -> None:
        if not 0.0 <= self.demo_fraction < 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1), got {self.demo_fraction}")
        for name in ("replay_capacity", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.replay_capacity == 1:  # 0 means auto; a ring of one row cannot hold a transition and its successor
            raise ValueError("replay_capacity must be 0 (auto) or >= 2 transitions, got 1")
        if not 0 <= self.seed < 2**32:  # numpy's and gymnasium's seed range
            raise ValueError(f"seed must be in [0, 2**32 - 1], got {self.seed}")
        if not math.isfinite(self.intervention_penalty):
            raise ValueError(f"intervention_penalty must be a finite number <= 0, got {self.intervention_penalty}")
        if self.intervention_penalty > 0:
            raise ValueError(
                f"intervention_penalty is added to the reward of the step that led to a take-over: give "
                f"a value <= 0 (e.g. -1), got {self.intervention_penalty}"
            )
