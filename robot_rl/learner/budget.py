"""The update budget: how many gradient updates the learner owes the data it has received.

    budget = utd_ratio * max(0, demo_transitions + received_steps - min_steps_to_train) - updates_done

Steps received before replay (online + demo transitions) holds `min_steps_to_train` earn nothing -- the
warm-up of the in-process trainer. Every later env step earns `utd_ratio` critic updates. The formula
uses only counts the learner can recover after a restart (steps in the episode store, demo transitions,
the checkpoint's update step), so a resumed learner owes exactly what the interrupted one did, including
updates for episodes that arrived after its last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UpdateBudget:
    """Counts in, updates owed out. `received_steps` and `updates_done` are advanced by the learner."""

    utd_ratio: int  # critic updates per received env step
    min_steps_to_train: int  # online + demo transitions replay must hold before any update
    demo_transitions: int = 0  # transitions in the demo replay (constant)
    received_steps: int = 0  # env steps of every stored online episode
    updates_done: int = 0  # critic updates done (the agent's step counter)

    def __post_init__(self) -> None:
        if self.utd_ratio < 1:
            raise ValueError(f"utd_ratio must be >= 1 update per env step, got {self.utd_ratio}")
        if self.min_steps_to_train < 0:
            raise ValueError(f"min_steps_to_train must be >= 0, got {self.min_steps_to_train}")

    @property
    def replay_transitions(self) -> int:
        return self.demo_transitions + self.received_steps

    @property
    def trainable(self) -> bool:
        """Replay holds enough data and at least one online step (the sampler draws from online data)."""
        return self.received_steps > 0 and self.replay_transitions >= self.min_steps_to_train

    @property
    def owed(self) -> int:
        """Updates owed now (0 before training may start)."""
        if not self.trainable:
            return 0
        earned = self.utd_ratio * (self.replay_transitions - self.min_steps_to_train)
        return max(0, earned - self.updates_done)

    def next_chunk(self, max_updates: int) -> int:
        """Updates to do before the next look at the executor: min(owed, max_updates)."""
        return min(self.owed, max(0, max_updates))

    def add_steps(self, n_steps: int) -> None:
        self.received_steps += n_steps

    def add_updates(self, n_updates: int) -> None:
        self.updates_done += n_updates
