"""A LeRobot policy (ACT, diffusion, ... any `PreTrainedPolicy` with `predict_action_chunk`) as a base policy,
through the Python entry point (docs/base-policies.md#exporting-a-lerobot-policy-act-diffusion):

    ROBOT_RL_LEROBOT_POLICY=outputs/train/act/checkpoints/last/pretrained_model \
        PYTHONPATH=docs/examples robot-rl bc eval lerobot_base:make --task pick_cube --obs pixels

robot_rl never imports LeRobot itself: run this in an environment that has it (checked against LeRobot 0.4.4 by
tests/check_lerobot_base.py). Our observation keys map to LeRobot's: `state` -> `observation.state`,
`image_<cam>` uint8 (H, W, C) -> `observation.images.<cam>` float (1, C, H, W) in [0, 1] (and `state` also to
`observation.environment_state` when the policy reads one); the checkpoint's own
pre/post-processors normalise the inputs and unnormalise the chunk. The chunk (K, A) is replayed open loop
(`CallablePolicy`); its actions must already be robot_rl's (the same components, in [-1, 1]).
"""

from __future__ import annotations

import os

import numpy as np

from robot_rl import keys
from robot_rl.bc.base import BasePolicyError, CallablePolicy

POLICY_ENV = "ROBOT_RL_LEROBOT_POLICY"  # the pretrained_model directory the factory loads


def lerobot_batch(obs: dict[str, np.ndarray], torch, env_state: bool = False) -> dict:
    """One robot_rl observation -> LeRobot's batch of one (before its pre-processor). `env_state`: the policy also
    reads `observation.environment_state` (a state-only ACT), given our `state` (proprio and object state)."""
    batch = {}
    for key, value in obs.items():
        if key == keys.STATE:
            batch["observation.state"] = torch.as_tensor(np.asarray(value, np.float32))[None]  # (1, D)
            if env_state:
                batch["observation.environment_state"] = batch["observation.state"]
        elif keys.is_image_key(key):
            image = torch.as_tensor(np.asarray(value)).permute(2, 0, 1).float() / 255.0  # (C, H, W) in [0, 1]
            batch[f"observation.images.{keys.camera_of(key)}"] = image[None]
    return batch


def make() -> CallablePolicy:
    """The LeRobot checkpoint in $ROBOT_RL_LEROBOT_POLICY as a BasePolicy declaring its action size."""
    path = os.environ.get(POLICY_ENV, "")
    if not path:
        raise BasePolicyError(f"set {POLICY_ENV} to a LeRobot pretrained_model directory")
    import torch
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    cfg = PreTrainedConfig.from_pretrained(path)
    policy = get_policy_class(cfg.type).from_pretrained(path).eval()
    pre, post = make_pre_post_processors(cfg, pretrained_path=path)
    action_dim = int(cfg.output_features["action"].shape[0])

    @torch.no_grad()
    def predict(obs: dict[str, np.ndarray]) -> np.ndarray:
        batch = lerobot_batch(obs, torch, env_state="observation.environment_state" in cfg.input_features)
        chunk = post(policy.predict_action_chunk(pre(batch)))  # (1, K, A)
        return chunk[0, : cfg.n_action_steps].float().cpu().numpy()

    return CallablePolicy(predict, reset=policy.reset, action_dim=action_dim)


__all__ = ["POLICY_ENV", "lerobot_batch", "make"]
