"""The acting core (robot_rl.acting.core): warm-up, base policy + residual, the policy, and the arbiter, with real
small agents and a real arbiter -- the one choice both `robot-rl train` and the actor node make every step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.acting.core import (
    HOLD,
    INTERVENTION,
    POLICY,
    WARMUP,
    Acting,
    HoldWarmup,
    RandomWarmup,
    node_acting,
    residual_mismatch,
)
from robot_rl.agents import AgentConfig, make_agent
from robot_rl.agents.residual import ResidualConfig, make_residual_agent
from robot_rl.bc.base import BasePolicyError, CallablePolicy
from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop.arbiter import Arbiter, ArbiterConfig

STATE_SPACE = gym.spaces.Box(-1, 1, (5,), np.float32)
ACTIONS = gym.spaces.Box(-1, 1, (4,), np.float32)  # dx, dy, dz, gripper


def _agent(residual: bool = False):
    cfg = AgentConfig(hidden_dims=(32, 32), batch_size=16)
    if residual:
        return make_residual_agent(cfg, ResidualConfig(residual_scale=0.3), STATE_SPACE, ACTIONS, seed=0)
    return make_agent(cfg, STATE_SPACE, ACTIONS, seed=0)


def _obs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {keys.STATE: rng.uniform(-1, 1, 5).astype(np.float32)}


def _counting_base() -> tuple[CallablePolicy, list[int]]:
    """A base with memory: it acts (0.1 * k, -0.2, 0.5, 0.9) at its k-th step since reset (chunks of 3 steps)."""
    calls = [0]

    def chunk(obs):
        k = calls[0]
        calls[0] += 3
        return np.array([[0.1 * (k + i), -0.2, 0.5, 0.9] for i in range(3)], np.float32)

    return CallablePolicy(chunk, reset=lambda: calls.__setitem__(0, 0), action_dim=4), calls


def _cmd(engaged: bool, twist=(0.5, 0.0, -0.25, 0, 0, 0), gripper=None, connected=True) -> TeleopCommand:
    return TeleopCommand(np.asarray(twist, np.float64), gripper, engaged, connected=connected)


class _FixedWarmup:
    """A warm-up policy that proposes one fixed action (a stand-in for a policy gone non-finite)."""

    def __init__(self, action):
        self.action = action

    def reset(self) -> None:
        pass

    def act(self, obs):
        return self.action


def test_warmup_draws_uniform_actions_in_the_action_bounds_from_the_callers_generator():
    low, high = np.array([-0.5, 0.0, -1.0, 0.2], np.float32), np.array([0.5, 1.0, 1.0, 0.4], np.float32)
    acting = Acting(4, warmup=RandomWarmup(low, high, np.random.default_rng(7)))
    replay = np.random.default_rng(7)  # the stream the in-process loop drew warm-up actions from before
    obs_rng = np.random.default_rng(0)
    for _ in range(50):
        choice = acting.choose(_obs(obs_rng), warmup=True)
        np.testing.assert_array_equal(choice.action, replay.uniform(low, high).astype(np.float32))
        assert np.all(choice.action >= low) and np.all(choice.action <= high)
        assert choice.source == WARMUP and choice.base_action is None and choice.infer_s is None
        assert choice.action.dtype == np.float32 and choice.proposed is choice.action
    # the node's uniform warm-up in [-1, 1] draws exactly what rng.uniform(-1, 1, A) did
    node_like, old = RandomWarmup(-1.0, 1.0, np.random.default_rng(3), 4), np.random.default_rng(3)
    np.testing.assert_array_equal(node_like.act({}), old.uniform(-1.0, 1.0, 4).astype(np.float32))


def test_after_warmup_the_policy_samples_while_training_and_gives_its_mean_when_deterministic():
    agent = _agent()
    rng = np.random.default_rng(1)
    training = Acting(4, policy=agent.policy, warmup=RandomWarmup(-1.0, 1.0, rng, 4))
    evaluating = Acting(4, policy=agent.policy, deterministic=True)
    obs = _obs(rng)
    mean = agent.policy.act(obs, deterministic=True)
    for _ in range(3):
        choice = evaluating.choose(obs, warmup=False)
        np.testing.assert_array_equal(choice.action, mean)
        assert choice.source == POLICY and choice.infer_s > 0
    samples = np.stack([training.choose(obs, warmup=False).action for _ in range(20)])
    assert np.all(np.abs(samples) <= 1.0) and samples[:, :3].std(axis=0).min() > 1e-3  # it explores
    assert not np.allclose(samples[0], mean)
    with pytest.raises(ValueError, match="no policy"):
        Acting(4, warmup=RandomWarmup(-1.0, 1.0, rng, 4)).choose(obs, warmup=False)
    with pytest.raises(ValueError, match="neither a warm-up policy nor a base"):
        Acting(4, policy=agent.policy).choose(obs, warmup=True)


def test_the_base_acts_every_step_noised_in_warmup_then_corrected_by_the_residual_and_reset_per_episode():
    agent = _agent(residual=True)
    base, _ = _counting_base()
    acting = Acting(4, policy=agent.policy, base=base, base_noise=0.2, rng=np.random.default_rng(5), deterministic=True)
    noise = np.random.default_rng(5)
    obs_rng = np.random.default_rng(2)
    acting.reset()
    for k in range(4):  # warm-up: clip(base + N(0, 0.2)), the base's action kept for the record
        choice = acting.choose(_obs(obs_rng), warmup=True)
        want_base = np.array([0.1 * k, -0.2, 0.5, 0.9], np.float32)
        np.testing.assert_allclose(choice.base_action, want_base, atol=1e-6)
        np.testing.assert_array_equal(
            choice.action, np.clip(want_base + noise.normal(0.0, 0.2, 4), -1, 1).astype(np.float32)
        )
        assert choice.source == WARMUP and choice.infer_s is None
    for k in range(4, 6):  # after warm-up: the untrained residual's mean is exactly the base, which kept counting
        choice = acting.choose(_obs(obs_rng), warmup=False)
        np.testing.assert_allclose(choice.base_action, [0.1 * k, -0.2, 0.5, 0.9], atol=1e-6)
        np.testing.assert_array_equal(choice.action, choice.base_action)
        assert choice.source == POLICY
    acting.reset()  # a new episode: the base starts over
    np.testing.assert_allclose(acting.choose(_obs(obs_rng), warmup=False).base_action, [0.0, -0.2, 0.5, 0.9])
    wrong = Acting(4, policy=agent.policy, base=CallablePolicy(lambda obs: np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        wrong.choose(_obs(obs_rng), warmup=False)


def test_an_engaged_operator_overrides_the_policy_and_is_flagged_and_a_lost_device_holds_the_arm():
    agent = _agent()
    acting = Acting(4, policy=agent.policy, arbiter=Arbiter(ArbiterConfig(), 4), deterministic=True)
    obs = _obs(np.random.default_rng(3))
    mean = agent.policy.act(obs, deterministic=True)
    acting.reset()
    free = acting.choose(obs, warmup=False, cmd=_cmd(engaged=False))
    np.testing.assert_array_equal(free.action, mean)
    assert free.source == POLICY and not free.is_intervention
    taken = acting.choose(obs, warmup=False, cmd=_cmd(engaged=True, gripper=1.0))
    np.testing.assert_allclose(taken.action, [0.5, 0.0, -0.25, 1.0])  # the person's twist, gripper 1 -> +1
    np.testing.assert_array_equal(taken.proposed, mean)  # the policy's own proposal, recorded as policy_action
    assert taken.is_intervention and taken.source == INTERVENTION and taken.infer_s is not None
    lost = acting.choose(obs, warmup=False, cmd=_cmd(engaged=False, connected=False))
    np.testing.assert_array_equal(lost.action, [0.0, 0.0, 0.0, 1.0])  # hold: no motion, the gripper kept closed
    assert lost.held and not lost.is_intervention and lost.source == HOLD
    still = acting.choose(obs, warmup=False, cmd=_cmd(engaged=False))  # the device is back: still held until engaged
    assert still.source == HOLD
    acting.reset()  # a new episode: the policy acts again
    assert acting.choose(obs, warmup=False, cmd=_cmd(engaged=False)).source == POLICY


def test_a_non_finite_proposal_reaches_the_arbiter_as_zeros_but_is_executed_as_proposed_when_nobody_overrides():
    nan = np.array([np.nan, 0.1, 0.2, 0.3], np.float32)
    acting = Acting(4, warmup=_FixedWarmup(nan), arbiter=Arbiter(ArbiterConfig(), 4))
    choice = acting.choose({}, warmup=True, cmd=None)
    assert np.isnan(choice.action[0]) and choice.source == WARMUP  # the safety filter downstream refuses it
    taken = acting.choose({}, warmup=True, cmd=_cmd(engaged=True, gripper=None))
    np.testing.assert_allclose(taken.action, [0.5, 0.0, -0.25, 0.3])  # the gripper: the last one executed
    assert taken.is_intervention and np.isnan(taken.proposed[0])


def test_the_teleop_warmup_holds_the_arm_keeping_the_last_gripper():
    gripper = [0.25]
    acting = Acting(4, warmup=HoldWarmup(4, lambda: gripper[0]))
    np.testing.assert_array_equal(acting.choose({}, warmup=True).action, [0.0, 0.0, 0.0, 0.25])
    gripper[0] = -1.0
    np.testing.assert_array_equal(acting.choose({}, warmup=True).action, [0.0, 0.0, 0.0, -1.0])


def test_the_node_builds_its_acting_core_from_its_parameters(tmp_path):
    random = node_acting(ActorConfig(warmup="random", seed=4), 4, lambda: 0.0)
    np.testing.assert_array_equal(
        random.choose({}, warmup=True).action, np.random.default_rng(4).uniform(-1.0, 1.0, 4).astype(np.float32)
    )
    assert random.arbiter is not None and random.base is None and not random.deterministic
    teleop = node_acting(ActorConfig(warmup="teleop"), 4, lambda: 1.0)
    np.testing.assert_array_equal(teleop.choose({}, warmup=True).action, [0, 0, 0, 1.0])
    assert node_acting(ActorConfig(warmup="hold", deterministic=True), 4, lambda: 0.0).warmup is None
    agent = _agent()
    agent.policy.save(tmp_path / "base")  # a saved Policy serves as a base
    residual = node_acting(ActorConfig(base_policy=str(tmp_path / "base"), base_noise=0.0), 4, lambda: 0.0)
    obs = _obs(np.random.default_rng(0))
    np.testing.assert_array_equal(residual.choose(obs, warmup=True).action, agent.policy.act(obs, deterministic=True))
    with pytest.raises(BasePolicyError, match="acts in 4 dims but the env takes 7"):
        node_acting(ActorConfig(base_policy=str(tmp_path / "base")), 7, lambda: 0.0)
    wrong_obs = {k: [n + 1 for n in shape] for k, shape in agent.obs_spec.items()}
    with pytest.raises(BasePolicyError, match="reads .* of shape"):
        node_acting(ActorConfig(base_policy=str(tmp_path / "base")), 4, lambda: 0.0, obs_spec=wrong_obs)


def test_a_residual_policy_needs_a_base_and_a_base_needs_a_residual_policy():
    plain, residual = _agent().policy, _agent(residual=True).policy
    assert residual_mismatch(plain, "") == "" and residual_mismatch(residual, "/bc") == ""
    assert "needs a base policy" in residual_mismatch(residual, "")
    assert "runs residual RL on /bc" in residual_mismatch(plain, "/bc")
