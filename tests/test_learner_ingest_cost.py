"""What ingesting one pixel episode costs the learner: trunk work per frame, none for a resend.

A pixel learner (frozen ResNet-10 trunk, features cached by the replay) must run its trunk over each new frame
once per cached view (`feature_cache_augs`, the first unshifted) and never again: not for a duplicate the actor
resent, not for one refused as out of order. Real LearnerService, real wire payloads, a real zarr store; the
trunk's calls are counted on the pass the feature cache runs (`ObsEncoder.frozen_pass`).
"""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import keys, wire
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.service import LearnerService, Outcome

STEPS = 12  # per episode
SIZE = 64  # px: a 2x2 ResNet-10 map, small enough for a fast test


def _episode(layout, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An episode of the layout's keys: random frames and states, actions in range, truncated at the end."""
    out = {}
    for key, spec in layout.specs.items():
        shape = (STEPS, *spec.step_shape)
        if spec.dtype == np.uint8:
            out[key] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif spec.dtype == np.bool_:
            out[key] = np.zeros(shape, bool)
        elif key.startswith(keys.T_CAPTURE):
            out[key] = 0.1 * np.arange(STEPS, dtype=np.float64)
        else:
            out[key] = rng.uniform(-0.5, 0.5, shape).astype(spec.dtype)
    out[keys.TRUNCATED][-1] = True
    return out


@pytest.fixture()
def service(tmp_path):
    cfg = LearnerConfig(
        out=str(tmp_path / "run"),
        task="pick_cube",
        obs_mode="pixels",
        image_size=SIZE,
        replay_capacity=200,
        min_steps_to_train=10_000,  # no update: ingest alone
        wandb_mode="disabled",
    )
    svc = LearnerService(cfg, log=lambda _: None)
    yield svc
    svc.close()


def test_a_pixel_episode_runs_the_trunk_once_per_frame_and_view_and_a_resent_one_not_at_all(service):
    agent = service.learner.agent
    augs, cameras = agent.cfg.feature_cache_augs, agent.policy.encoder.image_keys
    assert agent.policy.encoder.freeze_trunk and augs >= 1 and len(cameras) == 2
    encoder = agent.policy.encoder
    trunk = encoder.frozen_pass(encoder.image_shapes[cameras[0]])  # what the feature cache runs (one per run)
    before = trunk.frames  # the replays' probes
    rng = np.random.default_rng(0)
    meta = {"actor_id": "/robot_1/actor", "policy_version": -1, "task_meta": {"task": "pick_cube"}}
    first, second = (wire.encode_episode(_episode(service.layout, rng), {**meta, "index": i}) for i in (0, 1))
    assert service.ingest(first).outcome is Outcome.STORED
    assert trunk.frames - before == STEPS * len(cameras) * augs  # each frame, each view, once
    before = trunk.frames
    assert service.ingest(first).outcome is Outcome.DUPLICATE
    assert service.ingest(wire.encode_episode(_episode(service.layout, rng), {**meta, "index": 5})).outcome is (
        Outcome.GAP
    )
    assert trunk.frames == before  # a resend and an out-of-order episode cost no trunk pass
    assert service.ingest(second).outcome is Outcome.STORED
    assert trunk.frames - before == STEPS * len(cameras) * augs
    assert service.learner.timers.cpu_seconds["ingest"] > 0  # the ingest timer counts CPU seconds too
