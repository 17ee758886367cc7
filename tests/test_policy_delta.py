"""Policy pushes of trainable tensors only (robot_rl.agents.policy_delta) and the actor's loader that applies them.

Real policies (state, and pixels with the learner's recipe: frozen ResNet-10 trunk), real payload bytes, the real
worker thread of `PolicyLoader` fed the messages the learner publishes.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from robot_rl.agents.config import with_recipe
from robot_rl.agents.policy import Policy, PolicyPayloadError
from robot_rl.agents.policy_delta import (
    apply_delta,
    base_id,
    delta_base,
    frozen_names,
    to_delta,
)
from robot_rl.learner.config import LearnerConfig
from robot_rl.nodes.actor_policy import PolicyLoader
from robot_rl.ros import protocol

STATE_SPEC = {"state": [28]}
PIXEL_SPEC = {"state": [20], "front": [128, 128, 3], "wrist": [128, 128, 3]}  # `robot-rl bench ros`'s layout


def _policy(spec: dict, seed: int) -> Policy:
    torch.manual_seed(seed)
    cfg, _ = with_recipe(LearnerConfig().agent(), has_images=len(spec) > 1)
    return Policy(cfg, spec, 4).eval()


def _trained(policy: Policy, seed: int) -> Policy:
    """The same policy after "training": every trainable tensor moved, the frozen trunk untouched."""
    torch.manual_seed(seed)
    frozen = set(frozen_names(policy))
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if name not in frozen:
                p.add_(0.05 * torch.randn_like(p))
    return policy


def _obs(spec: dict, n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return {
        k: torch.randint(0, 256, (n, *v), dtype=torch.uint8, generator=g)
        if len(v) == 3
        else torch.randn(n, *v, generator=g)
        for k, v in spec.items()
    }


@pytest.fixture(scope="module")
def pixels():
    """(learner's policy, the actor's copy decoded from its full payload, their base) for the pixel layout."""
    learner = _policy(PIXEL_SPEC, 0)
    actor = Policy.from_bytes(learner.to_bytes()).eval()
    return learner, actor, base_id(learner)


def test_a_pixel_push_is_under_2_mb_and_brings_the_actor_to_the_learners_actions(pixels):
    learner, actor, base = pixels
    assert frozen_names(learner) and base_id(actor) == base  # decoded full payload: the same base
    _trained(learner, 1)
    delta = to_delta(learner, base)
    assert len(delta) <= 2_000_000 < len(learner.to_bytes()) / 10  # 1.39 MB of 22.4 MB
    updated = apply_delta(actor, base, delta)
    obs = _obs(PIXEL_SPEC, 32)
    want, before = learner.act_batch(obs, deterministic=True), actor.act_batch(obs, deterministic=True)
    got = updated.act_batch(obs, deterministic=True)
    assert float((before - want).abs().max()) > 0.05  # the push changes actions...
    assert float((got - want).abs().max()) < 1e-3  # ...to the learner's, up to fp16 rounding
    assert updated.encoder.trunk.conv1.weight is actor.encoder.trunk.conv1.weight  # the trunk is shared, not copied
    assert base_id(updated) == base  # and unchanged, so the next delta applies too


def test_a_delta_applies_only_to_its_base():
    a, b = _policy(STATE_SPEC, 0), _policy(STATE_SPEC, 1)
    assert base_id(a) == base_id(b)  # no frozen tensors: the base is the config, any delta of it applies
    cfg = a.cfg.to_dict()
    other = Policy(type(a.cfg).from_dict({**cfg, "hidden_dims": [64, 64]}), STATE_SPEC, 4)  # another config
    with pytest.raises(PolicyPayloadError, match="is for base"):
        apply_delta(other, base_id(other), to_delta(a, base_id(a)))
    with pytest.raises(PolicyPayloadError, match="is for base"):  # a pixel policy with another frozen trunk
        p0, p1 = _policy(PIXEL_SPEC, 0), _policy(PIXEL_SPEC, 1)
        apply_delta(p1, base_id(p1), to_delta(p0, base_id(p0)))
    assert len(to_delta(a, base_id(a))) < 0.6 * len(a.to_bytes())


def test_a_flipped_byte_anywhere_in_a_delta_and_non_finite_weights_are_refused():
    policy = _policy(STATE_SPEC, 0)
    base = base_id(policy)
    delta = to_delta(policy, base)
    header_len = int.from_bytes(delta[:8], "little")
    for at in (9, 8 + header_len // 2, 8 + header_len + 3, len(delta) // 2, len(delta) - 1):
        bad = bytearray(delta)
        bad[at] ^= 0x10
        with pytest.raises(PolicyPayloadError):
            apply_delta(policy, base, bytes(bad))
    with torch.no_grad():
        policy.actor.net[0].weight[0, 0] = float("inf")
    with pytest.raises(PolicyPayloadError, match="NaN or infinite"):
        apply_delta(policy, base, to_delta(policy, base))
    with pytest.raises(PolicyPayloadError, match="not a policy delta"):
        delta_base(policy.to_bytes())  # a full payload is not a delta


def _wait(loader: PolicyLoader, timeout_s: float = 60.0):
    """(newest policy built or None, reasons refused) once the worker has handled everything offered."""
    done, errors, end = None, [], time.monotonic() + timeout_s
    while time.monotonic() < end:
        built, refused = loader.take()
        done, errors = built or done, errors + refused
        if loader.idle():
            return done, errors
        time.sleep(0.01)
    raise AssertionError("the policy loader did not finish in time")


def test_the_loader_counts_a_delta_without_its_base_and_applies_it_once_the_full_policy_arrives():
    """What a (re)started actor sees: both latched topics at once, the delta first."""
    learner = _policy(STATE_SPEC, 0)
    full = protocol.policy_msg(learner.to_bytes(), 10)
    base = base_id(learner)
    _trained(learner, 2)
    delta = protocol.policy_msg(to_delta(learner, base), 30, protocol.POLICY_DELTA_KIND)
    loader = PolicyLoader()
    try:
        loader.offer_delta(delta)
        done, errors = _wait(loader)
        assert done is None and loader.deltas_without_base == 1 and len(errors) == 1
        assert errors[0][0] == protocol.POLICY_DELTA and "does not hold" in errors[0][1]
        loader.offer_delta(delta)  # counted again, reported once
        done, errors = _wait(loader)
        assert done is None and loader.deltas_without_base == 2 and errors == []
        loader.offer(full)
        (policy, version), errors = _wait(loader)
        assert version == 30 and errors == []  # the full v10 with the kept delta v30 on it
        obs = _obs(STATE_SPEC, 16)
        assert float((policy.act_batch(obs, True) - learner.act_batch(obs, True)).abs().max()) < 1e-3
        loader.offer_delta(delta)  # no newer than what it holds: nothing to do, nothing refused
        assert _wait(loader) == (None, [])
        _trained(learner, 3)
        loader.offer_delta(protocol.policy_msg(to_delta(learner, base), 40, protocol.POLICY_DELTA_KIND))
        (policy, version), errors = _wait(loader)
        assert version == 40 and errors == [] and loader.deltas_without_base == 2
        assert float((policy.act_batch(obs, True) - learner.act_batch(obs, True)).abs().max()) < 1e-3
        bad = protocol.policy_msg(to_delta(learner, "0" * 64), 50, protocol.POLICY_DELTA_KIND)
        loader.offer_delta(bad)  # another base: counted and reported, the policy in use stays
        done, errors = _wait(loader)
        assert done is None and loader.deltas_without_base == 3 and len(errors) == 1
    finally:
        loader.close()


def test_fp16_pushes_keep_actions_within_2e_4_of_fp32_on_1000_observations():
    """The measurement behind PUSH_DTYPE, on a state policy with a discrete gripper (argmax must not flip)."""
    cfg, _ = with_recipe(LearnerConfig().agent(), False)
    cfg = type(cfg).from_dict({**cfg.to_dict(), "discrete_gripper": True})
    torch.manual_seed(0)
    learner = Policy(cfg, STATE_SPEC, 4).eval()
    base = base_id(learner)
    actor = apply_delta(learner, base, to_delta(learner, base))
    obs = _obs(STATE_SPEC, 1000)
    diff = (actor.act_batch(obs, True) - learner.act_batch(obs, True)).abs()
    assert float(diff.max()) < 2e-4, float(diff.max())
    assert np.isfinite(diff.numpy()).all()


def test_a_damaged_delta_kept_for_its_base_is_refused_on_its_topic_and_the_full_policy_still_taken():
    """A NaN delta arriving before its full policy (latched topics, either order) must not poison that policy, and
    a full policy offered on the delta topic (or a delta on the full topic) is refused on the topic it came by."""
    learner = _policy(STATE_SPEC, 0)
    base = base_id(learner)
    full = protocol.policy_msg(learner.to_bytes(), 10)
    poisoned = _policy(STATE_SPEC, 0)
    with torch.no_grad():
        poisoned.actor.net[0].weight[0, 0] = float("nan")
    nan_delta = protocol.policy_msg(to_delta(poisoned, base), 30, protocol.POLICY_DELTA_KIND)
    loader = PolicyLoader()
    try:
        loader.offer_delta(nan_delta)
        assert _wait(loader)[0] is None
        loader.offer(full)
        (policy, version), errors = _wait(loader)
        assert version == 10 and bool(torch.isfinite(policy.actor.net[0].weight).all())
        assert [(t, "NaN or infinite" in why) for t, why in errors] == [(protocol.POLICY_DELTA, True)]
        loader.offer_delta(full)
        loader_errors = _wait(loader)[1]
        loader.offer(protocol.policy_msg(to_delta(learner, base), 40, protocol.POLICY_DELTA_KIND))
        loader_errors += _wait(loader)[1]
        assert [t for t, _ in loader_errors] == [protocol.POLICY_DELTA, protocol.POLICY], loader_errors
        assert all("WireError: expected a" in why for _, why in loader_errors)
    finally:
        loader.close()
