# ruff: noqa: E402, I001 -- sys.path is set up before robot_rl and tv_cpu_shim import
"""Check (not a unit test: LeRobot is never a dependency) that docs/examples/lerobot_base.py loads a LeRobot 0.4.4 ACT
checkpoint and runs it through `robot-rl bc eval`. Run in the peers venv from the repo root:

    .peers-venv/bin/python tests/check_lerobot_base.py

It builds a tiny ACT policy from a config (no download, random weights, unit statistics), saves it with its
processors as a LeRobot training run would, opens it through `load_base_policy` with pick_cube's state layout
checked, and acts on observations of that layout. (`robot-rl bc eval` on the sim needs robot_rl's MuJoCo, which
the peers venv's differs from: evaluate in an environment with both, or export the wrapper to a file and evaluate
that here.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_links = Path(tempfile.mkdtemp())  # robot_rl from this checkout (the peers venv does not install it)
(_links / "robot_rl_sim").symlink_to(REPO / "sim")
sys.path[:0] = [
    str(REPO),
    str(REPO / "docs" / "examples"),
    str(_links),
    str(REPO / "shared" / "peers"),
    "/work/shared/peers",
]

import tv_cpu_shim  # noqa: E402, F401 -- before torchvision (the peers venv's CPU torch)
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

from robot_rl.acting.config import ActorConfig


def build(out: Path) -> None:
    state_dim = ActorConfig(task="pick_cube", obs_mode="state").layout().obs_spec()["state"][0]
    cfg = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (state_dim,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (state_dim,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        chunk_size=8, n_action_steps=4, dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
        latent_dim=8, n_vae_encoder_layers=1, use_vae=False, pretrained_backbone_weights=None, device="cpu",
        push_to_hub=False,
    )  # fmt: skip
    torch.manual_seed(0)
    ACTPolicy(cfg).save_pretrained(out)
    unit = lambda n: {"mean": torch.zeros(n), "std": torch.ones(n), "min": -torch.ones(n), "max": torch.ones(n)}  # noqa: E731
    stats = {"observation.state": unit(state_dim), "observation.environment_state": unit(state_dim), "action": unit(4)}
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    pre.save_pretrained(out), post.save_pretrained(out)


def run(steps: int = 12) -> None:
    """The factory through load_base_policy with the pick_cube state layout checked, then `steps` actions."""
    import numpy as np

    from robot_rl.bc.base import load_base_policy

    spec = ActorConfig(task="pick_cube", obs_mode="state").layout().obs_spec()
    base = load_base_policy("lerobot_base:make", obs_spec=spec, action_dim=4)
    base.reset()
    rng = np.random.default_rng(0)
    actions = np.stack([base.act({"state": rng.normal(size=spec["state"]).astype(np.float32)}) for _ in range(steps)])
    assert actions.shape == (steps, 4) and np.isfinite(actions).all() and np.abs(actions).max() <= 1.0
    print(f"lerobot ACT via lerobot_base:make: {steps} actions {actions.shape}, first {actions[0].round(3)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        os.environ["ROBOT_RL_LEROBOT_POLICY"] = tmp
        run()
