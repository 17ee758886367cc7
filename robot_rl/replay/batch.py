"""A batch of transitions as the learner consumes it."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """B transitions, all tensors on the learner's device.

    `discount` = gamma^k * (1 - terminated), where k is the number of rewards summed into `reward`
    (k < n_step when the episode ended first); the learner's target is reward + discount * V(next_obs).
    """

    obs: dict[
        str, torch.Tensor
    ]  # STATE (B, D) float32; image (B, H, W, C) uint8, or cached trunk features (B, C', h, w) bfloat16
    action: torch.Tensor  # (B, A) float32 in [-1, 1]
    reward: torch.Tensor  # (B,) float32: n-step discounted sum of rewards
    next_obs: dict[str, torch.Tensor]  # like obs, k steps later
    discount: torch.Tensor  # (B,) float32
    base_action: torch.Tensor | None = None  # (B, A) float32: the base policy's action (zeros without one)
    is_intervention: torch.Tensor | None = None  # (B,) bool: teleop (a person or the scripted operator) chose `action`
    next_base_action: torch.Tensor | None = None  # (B, A) float32: the base policy's action at next_obs
    is_demo: torch.Tensor | None = None  # (B,) bool: drawn from a demonstration replay (set by MixedSampler)
    success_offset: torch.Tensor | None = None  # (B, G) float32: success pose minus the row's (replay's pose_slice)
    has_success: torch.Tensor | None = None  # (B,) bool: the row's episode ended in success (success_offset is set)

    def __len__(self) -> int:
        return int(self.action.shape[0])

    @staticmethod
    def cat(batches: list[Batch]) -> Batch:
        """Concatenate batches along the batch dimension (optional fields only if every batch has them)."""

        def cat_opt(name: str) -> torch.Tensor | None:
            parts = [getattr(b, name) for b in batches]
            return None if any(p is None for p in parts) else torch.cat(parts)

        keys = batches[0].obs.keys()
        return Batch(
            obs={k: torch.cat([b.obs[k] for b in batches]) for k in keys},
            action=torch.cat([b.action for b in batches]),
            reward=torch.cat([b.reward for b in batches]),
            next_obs={k: torch.cat([b.next_obs[k] for b in batches]) for k in keys},
            discount=torch.cat([b.discount for b in batches]),
            base_action=cat_opt("base_action"),
            is_intervention=cat_opt("is_intervention"),
            next_base_action=cat_opt("next_base_action"),
            is_demo=cat_opt("is_demo"),
            success_offset=cat_opt("success_offset"),
            has_success=cat_opt("has_success"),
        )
