"""One frozen trunk pass per control step for a BC base and the residual on it (issues 23, 25).

A residual agent created on a BC base with a frozen ResNet-10 trunk (same cameras and image sizes) takes the base's
trunk weights; the acting core then runs the trunk once per step for both, acting exactly as two passes would; a
residual whose trunk differs (by fingerprint) falls back to two passes; the frozen trunk's channels-last folded
copy computes the contiguous module's features within float rounding, and the learner's cached features agree."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.acting.core import Acting
from robot_rl.agents import AgentConfig
from robot_rl.agents.residual import ResidualConfig, make_residual_agent, policy_from_bytes, shared_trunk
from robot_rl.bc import BCPolicyConfig, load_base_policy, make_bc_policy
from robot_rl.bc.base import CallablePolicy
from robot_rl.nets.encoders import fold_batchnorm
from robot_rl.nets.obs_encoder import FrameFeatures
from robot_rl.training.residual import make_residual_bases

FRONT, WRIST = keys.image_key("front"), keys.image_key("wrist")
PX = 32  # small frames: ResNet-10 maps 32 x 32 to (512, 1, 1)
SPACE = gym.spaces.Dict(
    {
        keys.STATE: gym.spaces.Box(-1, 1, (3,), np.float32),
        FRONT: gym.spaces.Box(0, 255, (PX, PX, 3), np.uint8),
        WRIST: gym.spaces.Box(0, 255, (PX, PX, 3), np.uint8),
    }
)
SPEC = {keys.STATE: [3], FRONT: [PX, PX, 3], WRIST: [PX, PX, 3]}
ACTIONS = gym.spaces.Box(-1, 1, (4,), np.float32)
STEPS = 6


def _base_dir(tmp_path, seed: int = 0):
    """A saved untrained flow base (frozen ResNet-10 trunk, non-trivial batch-norm statistics), ensembling chunks
    of 2, so it predicts (runs its trunk) at every step."""
    torch.manual_seed(seed)
    cfg = BCPolicyConfig(kind="flow", chunk_size=2, hidden_dims=(32,), latent_dim=8, flow_steps=3)
    base = make_bc_policy(cfg, SPEC, 4)
    _randomise_batch_norm(base.encoder.trunk, seed)
    base.save(tmp_path / "base")
    return tmp_path / "base"


def _randomise_batch_norm(trunk: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in trunk.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)


def _agent(seed: int = 1):
    """A residual agent on the pixel layout whose actor's last layer is non-zero (an untrained residual adds zero,
    which would hide a wrong correction)."""
    cfg = AgentConfig(
        hidden_dims=(32, 32), batch_size=16, encoder="resnet10", freeze_encoder=True, latent_dim=8, algo="sac"
    )
    agent = make_residual_agent(cfg, ResidualConfig(residual_scale=0.5), SPACE, ACTIONS, seed=seed)
    last = agent.policy.actor.net[-1]
    with torch.no_grad():
        last.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    return agent


def _observations(n: int, seed: int = 3) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            keys.STATE: rng.uniform(-1, 1, 3).astype(np.float32),
            FRONT: rng.integers(0, 256, (PX, PX, 3), dtype=np.uint8),
            WRIST: rng.integers(0, 256, (PX, PX, 3), dtype=np.uint8),
        }
        for _ in range(n)
    ]


def _trunk_calls(*encoders) -> list[int]:
    """A counter of forward calls of the modules the encoders' frozen trunks actually run (their folded copies)."""
    calls = [0]

    def hook(*_):
        calls[0] += 1

    for encoder in encoders:
        encoder.frozen_trunk().register_forward_hook(hook)
    return calls


def _trunk_state(encoder) -> dict[str, torch.Tensor]:
    return encoder.trunk.state_dict()


def test_a_new_residual_agent_takes_the_frozen_trunk_of_its_base_and_caches_features_from_it(tmp_path):
    path = _base_dir(tmp_path)
    agent = _agent()
    base_encoder = load_base_policy(path).encoder
    assert not all(torch.equal(v, _trunk_state(base_encoder)[k]) for k, v in _trunk_state(agent.policy.encoder).items())
    make_residual_bases(path, agent)  # what `robot-rl train --base-policy` does once the agent exists
    for name, value in _trunk_state(base_encoder).items():
        assert torch.equal(_trunk_state(agent.policy.encoder)[name], value), name
    assert agent.policy.encoder.trunk_fingerprint() == base_encoder.trunk_fingerprint()
    # the learner's cached features (unshifted view) are the base's trunk features, to bfloat16 rounding
    frames = torch.as_tensor(np.stack([o[FRONT] for o in _observations(3)]))
    cached = agent.frame_features(FRONT, frames)[:, 0].float()
    with torch.no_grad():
        want = base_encoder.trunk_features({FRONT: frames, WRIST: frames})[FRONT]
    torch.testing.assert_close(cached, want, rtol=1e-2, atol=1e-2 * want.abs().max().item())
    # a base that is not one of our frozen-trunk BC policies, or an agent that has updated, keeps its trunk
    fingerprint = agent.policy.encoder.trunk_fingerprint()
    assert not agent.adopt_base_trunk(CallablePolicy(lambda obs: np.zeros(4, np.float32), action_dim=4))
    other = load_base_policy(_base_dir(tmp_path / "other", seed=5))
    agent.step = 1
    assert not agent.adopt_base_trunk(other)
    assert agent.policy.encoder.trunk_fingerprint() == fingerprint


@pytest.mark.parametrize("loaded", ["in_process", "from_bytes"])
def test_sharing_runs_the_trunk_once_per_step_and_acts_as_two_passes_would(tmp_path, loaded):
    path = _base_dir(tmp_path)
    agent = _agent()
    assert agent.adopt_base_trunk(load_base_policy(path))
    # in process (the training loop's policy), or as the ROS actor receives it (its trunk weights in the payload)
    policy = agent.policy if loaded == "in_process" else policy_from_bytes(agent.policy.to_bytes()).eval()
    base, reference_base = load_base_policy(path), load_base_policy(path)
    acting = Acting(4, policy=policy, base=base, deterministic=True)
    acting.reset()
    reference_base.reset()
    calls = _trunk_calls(policy.encoder, base.encoder, reference_base.encoder)
    shared = []
    for obs in _observations(STEPS):
        shared.append(acting.choose(obs, warmup=False).action)
    assert acting.trunk_shared and shared_trunk(policy, base) is policy.encoder
    assert calls[0] == STEPS  # one trunk pass per step for base and residual
    calls[0] = 0
    two_pass = []
    with torch.no_grad():
        for obs in _observations(STEPS):  # each runs its own trunk, as without sharing
            two_pass.append(policy.act(obs, deterministic=True, base_action=reference_base.act(obs)))
    assert calls[0] == 2 * STEPS
    np.testing.assert_allclose(np.stack(shared), np.stack(two_pass), rtol=0, atol=1e-6)
    base_only = np.stack([load_base_policy(path).act(o) for o in _observations(1)])
    assert not np.allclose(shared[0], base_only[0], atol=1e-3)  # the residual's correction is in the action


def test_a_residual_with_other_trunk_weights_falls_back_to_two_passes(tmp_path):
    path = _base_dir(tmp_path)
    policy = _agent().policy  # never took the base's trunk: its own random initialisation
    base, reference_base = load_base_policy(path), load_base_policy(path)
    assert policy.encoder.same_trunk_layout(base.encoder)
    assert policy.encoder.trunk_fingerprint() != base.encoder.trunk_fingerprint()
    acting = Acting(4, policy=policy, base=base, deterministic=True)
    acting.reset()
    reference_base.reset()
    calls = _trunk_calls(policy.encoder, base.encoder, reference_base.encoder)
    for obs in _observations(STEPS):
        action = acting.choose(obs, warmup=False).action
        with torch.no_grad():
            want = policy.act(obs, deterministic=True, base_action=reference_base.act(obs))
        np.testing.assert_allclose(action, want, rtol=0, atol=1e-6)
    assert acting.trunk_shared is False
    assert calls[0] == 2 * STEPS * 2  # two passes per step in Acting, two in the reference
    # the same weights copied in later (e.g. a policy the learner built on this base): shared from then on
    assert policy.encoder.adopt_trunk(base.encoder)
    calls = _trunk_calls(policy.encoder, base.encoder)  # the policy's folded copy is rebuilt from the new weights
    acting.choose(_observations(1)[0], warmup=False)
    assert acting.trunk_shared and calls[0] == 1


def test_the_frozen_trunks_channels_last_folded_copy_matches_the_contiguous_module(tmp_path):
    base = load_base_policy(_base_dir(tmp_path))
    encoder = base.encoder
    frames = torch.as_tensor(np.stack([o[FRONT] for o in _observations(4)]))
    with torch.no_grad():
        fast = encoder.frozen_trunk()(frames)  # what acting and the feature cache run: folded, channels-last
        contiguous = fold_batchnorm(encoder.trunk)(frames)  # folded, default (contiguous) layout
        module = encoder.trunk.eval()(frames)  # the module as saved, batch norm separate
    assert fast.is_contiguous(memory_format=torch.channels_last) and contiguous.is_contiguous()
    scale = module.abs().max().item()
    assert scale > 0.1
    torch.testing.assert_close(fast, contiguous, rtol=0, atol=1e-5 * scale)
    torch.testing.assert_close(fast, module, rtol=0, atol=1e-5 * scale)
    # the learner caches bfloat16 copies of exactly what its prepared pass computes, these features within 1e-5
    cached = FrameFeatures(encoder, n_augs=1)(FRONT, frames)[:, 0]
    with torch.no_grad():
        prepared = encoder.frozen_pass((PX, PX, 3))(frames)
    torch.testing.assert_close(prepared, fast, rtol=0, atol=1e-5 * scale, check_stride=False)
    torch.testing.assert_close(cached, prepared.to(torch.bfloat16), rtol=0, atol=0)
