"""The frozen trunk's prepared pass (robot_rl.nets.fast_trunk) beyond the actor: the learner's feature cache and BC
bases acting (issues 26, 23).

The replay's cached features come from the prepared pass (onnxruntime, else TorchScript) built once per trunk and
shared with acting, equal to eager torch's within 1e-5 relative, so a run resumed under another runtime
(ROBOT_RL_TRUNK_RUNTIME=eager, or a pass that failed to build) refills its replay with the same bfloat16 features
but for rare one-step roundings; flow and mlp BC bases with a frozen trunk act through it, also under a residual
sharing the trunk. Real ResNet-10 trunks, real onnxruntime / TorchScript builds, real replays and acting core.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.acting.core import Acting
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.residual import ResidualConfig, make_residual_agent, policy_from_bytes
from robot_rl.bc import BCPolicyConfig, make_bc_policy
from robot_rl.bc.base import CallablePolicy, prepare_base_acting
from robot_rl.nets.fast_trunk import RUNTIME_ENV, chosen_runtime

FRONT, WRIST = keys.image_key("front"), keys.image_key("wrist")
PX = 48  # small frames: ResNet-10 maps 48 x 48 to (512, 2, 2)
SHAPE = (PX, PX, 3)
SPEC = {keys.STATE: [3], FRONT: list(SHAPE), WRIST: list(SHAPE)}
SPACE = gym.spaces.Dict(
    {
        keys.STATE: gym.spaces.Box(-1, 1, (3,), np.float32),
        FRONT: gym.spaces.Box(0, 255, SHAPE, np.uint8),
        WRIST: gym.spaces.Box(0, 255, SHAPE, np.uint8),
    }
)
ACTIONS = gym.spaces.Box(-1, 1, (4,), np.float32)
FAST = chosen_runtime("auto")  # what the default builds here: onnxruntime with the onnx extra, else torchscript
STEPS = 10


def _agent_cfg() -> AgentConfig:
    return AgentConfig(
        hidden_dims=(32, 32), batch_size=8, encoder="resnet10", freeze_encoder=True, latent_dim=8, feature_cache_augs=2
    )


def _episode(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A stored episode of `n` steps: frames with structure (a ramp plus noise), random states and actions."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 180, PX)[:, None, None]
    frames = lambda: (ramp + rng.integers(0, 70, (n, PX, PX, 3))).astype(np.uint8)  # noqa: E731
    return {
        keys.STATE: rng.uniform(-1, 1, (n, 3)).astype(np.float32),
        FRONT: frames(),
        WRIST: frames(),
        keys.ACTION: rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        keys.REWARD: rng.uniform(0, 1, n).astype(np.float32),
        keys.TERMINATED: np.zeros(n, bool),
        keys.TRUNCATED: np.r_[np.zeros(n - 1, bool), True],
    }


def _count_eager(*encoders) -> list[int]:
    """Frames the encoders' eager folded trunks run (a forward hook): zero when everything goes through the pass."""
    frames = [0]

    def hook(module, args, out):
        frames[0] += len(args[0])

    for encoder in encoders:
        encoder.frozen_trunk().register_forward_hook(hook)
    return frames


def _cached(monkeypatch, runtime: str, episode: dict) -> tuple[object, torch.Tensor]:
    """A new agent (seed 0) under `runtime`, its replay filled with `episode`: (agent, the front camera's cache)."""
    monkeypatch.setenv(RUNTIME_ENV, runtime)
    torch.manual_seed(0)  # the same trunk weights for every runtime
    agent = make_agent(_agent_cfg(), SPACE, ACTIONS, seed=0)
    replay = agent.make_replay(64, seed=1)
    replay.add_episode(episode)
    return agent, replay._obs[FRONT][: len(episode[keys.ACTION])]


def test_the_feature_cache_runs_the_prepared_pass_built_once_and_matches_eager_features(monkeypatch):
    episode = _episode(20)
    eager_agent, eager = _cached(monkeypatch, "eager", episode)
    agent, fast = _cached(monkeypatch, "auto", episode)
    encoder = agent.policy.encoder
    prepared = encoder.prepare_acting()[SHAPE]
    assert prepared.runtime == FAST and eager_agent.policy.encoder.prepare_acting()[SHAPE].runtime == "eager"
    # one build per trunk: a second replay (the demos'), more frames and acting all run that same pass, no eager frame
    eager_frames = _count_eager(encoder)
    agent.make_replay(32, seed=2).add_episode(_episode(8, seed=1))
    obs = {k: v[0] for k, v in _episode(1, seed=2).items() if k in SPEC}
    agent.policy.act(obs, deterministic=True)
    assert encoder.prepare_acting()[SHAPE] is prepared and eager_frames[0] == 0
    # the features: float32 within 1e-5 relative of eager torch's, and the bfloat16 cache the same but for rare
    # one-step roundings (what a resumed run refilling its replay under the other runtime would store)
    frames = torch.as_tensor(episode[FRONT])
    with torch.no_grad():
        want, got = encoder.frozen_trunk()(frames), prepared(frames)
    scale = float(want.abs().max())
    assert scale > 0.1 and float((got - want).abs().max()) <= 1e-5 * scale
    assert eager.shape == fast.shape == (20, 2, 512, 2, 2) and fast.dtype == torch.bfloat16
    differ = fast != eager
    assert float(differ.float().mean()) < 1e-3  # rounding flips: a handful of the 81920 values
    one_step = eager.float().abs() * 2.0**-7 + 1e-5 * scale  # a bfloat16 step (8 significant bits) + float error
    assert bool(((fast.float() - eager.float()).abs() <= one_step)[differ].all())
    # the unshifted view is the prepared pass's features, rounded
    assert torch.equal(fast[:, 0], got.to(torch.bfloat16))


def test_eager_is_kept_where_asked_and_its_cache_runs_the_eager_module(monkeypatch):
    agent, _ = _cached(monkeypatch, "eager", _episode(2))
    eager_frames = _count_eager(agent.policy.encoder)
    agent.frame_features(FRONT, torch.as_tensor(_episode(5, seed=3)[FRONT]))
    assert eager_frames[0] == 5 * 2  # every frame, both views, through the eager folded module


def _bc_base(kind: str):
    """An untrained BC base with a frozen ResNet-10 trunk, predicting (running its trunk) at every step."""
    torch.manual_seed(0)
    cfg = BCPolicyConfig(kind=kind, chunk_size=2, hidden_dims=(32,), latent_dim=8, flow_steps=3)
    return make_bc_policy(cfg, SPEC, 4).eval()


def _observations(n: int) -> list[dict]:
    episode = _episode(n, seed=4)
    return [{k: episode[k][t] for k in SPEC} for t in range(n)]


@pytest.mark.parametrize("kind", ["mlp", "flow"])
def test_a_bc_base_with_a_frozen_trunk_acts_through_the_prepared_pass_within_1e_4(kind):
    base, reference = _bc_base(kind), _bc_base(kind)
    assert prepare_base_acting(base) == f"{PX}x{PX}x3: {FAST}"
    assert prepare_base_acting(CallablePolicy(lambda obs: np.zeros(4, np.float32), action_dim=4)) == ""
    eager_frames = _count_eager(base.encoder)
    base.reset()
    reference.reset()
    got = np.stack([base.act(o) for o in _observations(STEPS)])
    want = np.stack([reference.act(o) for o in _observations(STEPS)])
    assert eager_frames[0] == 0 and float(want.std()) > 1e-3
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_base_and_residual_sharing_the_trunk_run_one_prepared_pass_per_step():
    agent = make_residual_agent(_agent_cfg(), ResidualConfig(residual_scale=0.5), SPACE, ACTIONS, seed=1)
    with torch.no_grad():
        agent.policy.actor.net[-1].weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    base, reference = _bc_base("flow"), _bc_base("flow")
    assert agent.adopt_base_trunk(base)
    policy, unprepared = agent.policy.eval(), policy_from_bytes(agent.policy.to_bytes()).eval()
    policy.prepare_acting()  # what the actor's loader and `eval` do with the residual policy
    prepare_base_acting(base)  # ... and with the base (robot_rl.acting.core.node_acting, eval)
    eager_frames = _count_eager(policy.encoder, base.encoder)
    acting = Acting(4, policy=policy, base=base, deterministic=True)
    acting.reset()
    reference.reset()
    for obs in _observations(STEPS):
        action = acting.choose(obs, warmup=False).action
        with torch.no_grad():  # two eager passes: the residual's trunk and the reference base's
            want = unprepared.act(obs, deterministic=True, base_action=reference.act(obs))
        np.testing.assert_allclose(action, want, rtol=0, atol=1e-4)
    assert acting.trunk_shared and eager_frames[0] == 0
