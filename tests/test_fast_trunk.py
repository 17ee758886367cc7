"""The frozen trunk's prepared acting pass (robot_rl.nets.fast_trunk): exact actions, built once and shared by
policy deltas, never stale after new trunk weights, eager torch when it cannot be built, built by the actor's loader.

Real policies with the learner's pixel recipe (frozen ResNet-10), real onnxruntime / TorchScript builds, the real
`PolicyLoader` worker thread.
"""

from __future__ import annotations

import logging
import sys
import time

import pytest
import torch

from robot_rl.agents.config import with_recipe
from robot_rl.agents.policy import Policy
from robot_rl.agents.policy_delta import apply_delta, base_id, frozen_names, to_delta
from robot_rl.learner.config import LearnerConfig
from robot_rl.nets.fast_trunk import PreparedTrunk, chosen_runtime, prepare_trunk
from robot_rl.nodes.actor_policy import PolicyLoader
from robot_rl.ros import protocol

SPEC = {"state": [12], "front": [64, 64, 3], "wrist": [64, 64, 3]}
SHAPE = (64, 64, 3)
FAST = ["torchscript"] + (["onnxruntime"] if chosen_runtime("auto") == "onnxruntime" else [])


def _policy(seed: int, discrete_gripper: bool = True) -> Policy:
    torch.manual_seed(seed)
    cfg, _ = with_recipe(LearnerConfig().agent(), has_images=True)
    cfg = type(cfg).from_dict({**cfg.to_dict(), "discrete_gripper": discrete_gripper})
    return Policy(cfg, SPEC, 4).eval()


def _obs(n: int, seed: int = 3) -> list[dict]:
    """Observations one at a time, as the actor acts: frames with structure (gradients plus noise), not flat."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 200, 64)[:, None, None]
    frames = lambda: (ramp + torch.randint(0, 56, (64, 64, 3), generator=g)).to(torch.uint8).numpy()  # noqa: E731
    return [{"state": torch.randn(12, generator=g).numpy(), "front": frames(), "wrist": frames()} for _ in range(n)]


def _actions(policy: Policy, observations: list[dict]) -> torch.Tensor:
    return torch.stack([torch.as_tensor(policy.act(o, deterministic=True)) for o in observations])


@pytest.mark.parametrize("runtime", FAST)
def test_the_prepared_acting_pass_keeps_actions_within_1e_4_and_no_gripper_choice_changes(runtime):
    eager, fast = _policy(0), _policy(0)
    assert fast.prepare_acting(runtime) == f"64x64x3: {runtime}"  # built, not fallen back to eager
    eager_calls = []
    fast.encoder.frozen_trunk().register_forward_hook(lambda *_: eager_calls.append(1))
    observations = _obs(200)
    want, got = _actions(eager, observations), _actions(fast, observations)
    assert not eager_calls  # every action came through the prepared pass
    assert float((got - want).abs().max()) <= 1e-4
    assert torch.equal(got[:, -1], want[:, -1]) and len(set(want[:, -1].tolist())) > 1  # gripper choices vary
    assert float(want[:, :-1].std()) > 1e-3  # the arm actions vary with the observation, so equality means something


def test_a_delta_shares_the_prepared_pass_and_new_trunk_weights_drop_it():
    full = _policy(1, discrete_gripper=False)
    prepared = full.encoder.prepare_acting(FAST[-1])[SHAPE]
    assert prepared.runtime == FAST[-1] and full.encoder.prepare_acting()[SHAPE] is prepared  # built once
    trained = _policy(1, discrete_gripper=False)
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if name not in frozen_names(trained):
                p.add_(0.05 * torch.randn_like(p))
    updated = apply_delta(full, base_id(full), to_delta(trained, base_id(full)))
    assert updated.encoder.prepare_acting()[SHAPE] is prepared  # the delta's copy acts with it, builds nothing
    observations = _obs(20)
    assert float((_actions(updated, observations) - _actions(trained, observations)).abs().max()) < 1e-3
    # new trunk weights (a new base): the old acting pass must not run, the eager trunk of the new weights does
    other = _policy(2, discrete_gripper=False)
    updated.encoder.adopt_trunk(other.encoder)
    frames = {k: torch.as_tensor(observations[0][k])[None] for k in ("front", "wrist")}
    with torch.no_grad():
        got, want = updated.encoder.trunk_features(frames), other.encoder.trunk_features(frames)
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in frames)
    assert updated.encoder.prepare_acting()[SHAPE] is not prepared


def test_a_pass_that_cannot_be_built_or_does_not_match_falls_back_to_eager_with_one_warning_line(caplog, monkeypatch):
    class NoisyTrunk(torch.nn.Module):  # traces and exports fine, but no two runs agree: the probe check refuses it
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, frames):
            x = self.conv(frames.permute(0, 3, 1, 2).float())
            return x + torch.rand_like(x)

    trunk = NoisyTrunk().eval()
    with caplog.at_level(logging.WARNING, logger="robot_rl.nets.fast_trunk"):
        for runtime in FAST:
            assert prepare_trunk(trunk, (16, 16, 3), 2, runtime).run is trunk
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as where the onnx extra is not installed
        prepared = prepare_trunk(_policy(0).encoder.frozen_trunk(), SHAPE, 2, "onnxruntime")
    assert isinstance(prepared, PreparedTrunk) and prepared.runtime == "eager"
    assert len(caplog.records) == len(FAST) + 1
    assert all("\n" not in r.getMessage() and "acting with eager torch" in r.getMessage() for r in caplog.records)
    assert (
        "features differ" in caplog.records[0].getMessage()
        and "import of onnxruntime" in caplog.records[-1].getMessage()
    )


def test_the_actors_loader_builds_the_acting_pass_on_its_worker_thread():
    learner = _policy(4)
    loader = PolicyLoader()
    try:
        loader.offer(protocol.policy_msg(learner.to_bytes(), 7))
        end = time.monotonic() + 120
        while (taken := loader.take()[0]) is None and time.monotonic() < end:
            time.sleep(0.01)
        assert taken is not None, "the loader built nothing"
        policy, version = taken
        assert version == 7 and loader.trunk_runtime == f"64x64x3: {FAST[-1]}"
        prepared = policy.encoder._folded.acting[SHAPE]
        t0 = time.perf_counter()
        assert policy.prepare_acting() == loader.trunk_runtime  # what the tick's swap calls: nothing left to build
        assert time.perf_counter() - t0 < 0.05 and policy.encoder._folded.acting[SHAPE] is prepared
    finally:
        loader.close()


def _take(loader: PolicyLoader) -> tuple[Policy, int]:
    end = time.monotonic() + 120
    while (taken := loader.take()[0]) is None and time.monotonic() < end:
        time.sleep(0.01)
    assert taken is not None, "the loader built nothing"
    return taken


def test_a_full_policy_of_the_held_base_shares_its_acting_pass_and_another_base_builds_its_own():
    local = _policy(5)  # the actor's local policy: its pass built where the actor loaded it
    prepared = local.encoder.prepare_acting()[SHAPE]
    learner = _policy(5)  # the learner's, same trunk and config, trained further
    with torch.no_grad():
        for name, p in learner.named_parameters():
            if name not in frozen_names(learner):
                p.add_(0.05 * torch.randn_like(p))
    loader = PolicyLoader()
    try:
        loader.hold(local, 0)
        loader.offer(protocol.policy_msg(learner.to_bytes(), 3))
        policy, version = _take(loader)
        assert version == 3 and policy.encoder._folded.acting[SHAPE] is prepared  # no export, no session built
        observations = _obs(20)
        assert float((_actions(policy, observations) - _actions(learner, observations)).abs().max()) < 1e-4
        assert float((_actions(policy, observations) - _actions(local, observations)).abs().max()) > 1e-2
        loader.offer_delta(protocol.policy_msg(to_delta(local, base_id(local)), 4, protocol.POLICY_DELTA_KIND))
        policy, version = _take(loader)  # a delta of the held base applies
        assert version == 4 and policy.encoder._folded.acting[SHAPE] is prepared
        assert float((_actions(policy, observations) - _actions(local, observations)).abs().max()) < 1e-3
        other = _policy(6)  # another trunk: its own pass
        loader.offer(protocol.policy_msg(other.to_bytes(), 5))
        policy, version = _take(loader)
        assert version == 5 and policy.encoder._folded.acting[SHAPE] is not prepared
        assert float((_actions(policy, observations) - _actions(other, observations)).abs().max()) < 1e-4
    finally:
        loader.close()
