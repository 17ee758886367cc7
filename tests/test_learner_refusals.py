"""The learner refuses bad episodes and never locks onto the layout of whatever arrives first (no ROS).

Good episodes are real scripted pick_cube demos (MuJoCo, state obs) sent as real wire payloads into a real
zarr store; bad ones are those demos with one thing broken. The layout checks of pixel episodes run on
`EpisodeLayout` directly (no agent needed).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_learner_service import add_camera, demos, learner_config  # noqa: F401 - the module-scoped demos fixture

from robot_rl import keys, wire
from robot_rl.learner.config import LearnerConfig
from robot_rl.learner.episode_layout import EpisodeLayout
from robot_rl.learner.episodes import EpisodeMismatch
from robot_rl.learner.refusals import REFUSED_LOG, RateLimitedLog, read_settled
from robot_rl.learner.service import LearnerService, Outcome

R1 = "/r1/actor"


def send(service: LearnerService, episode: dict, index: int, actor: str = R1, task_meta: dict | None = None):
    meta = {"actor_id": actor, "index": index, "policy_version": -1, "success": False, "task_meta": task_meta or {}}
    return service.ingest(wire.encode("episode", episode, meta))  # encode_episode would refuse unequal lengths


def broken(episode: dict, key: str, change) -> dict:
    value = episode[key].copy()
    change(value)
    return {**episode, key: value}


@pytest.mark.parametrize("configured", ["task", "demos", "nothing"])
def test_a_malformed_first_episode_does_not_make_good_ones_be_refused(tmp_path, demos, configured):
    overrides = {"task": {"task": "pick_cube"}, "demos": {"demos": str(demos.path)}, "nothing": {}}[configured]
    service = LearnerService(learner_config(tmp_path, **overrides), log=lambda line: None)
    good = demos.get_episode(0)
    short_state = {**good, keys.STATE: np.ascontiguousarray(good[keys.STATE][:, :20])}  # consistent, wrong layout
    nan_state = broken(good, keys.STATE, lambda v: v.__setitem__((3, 5), np.nan))
    first = send(service, nan_state if configured == "nothing" else short_state, 0)
    assert first.outcome is Outcome.REFUSED and service.acks() == {R1: 1}  # acknowledged: the actor stops resending
    for index in (1, 2):
        assert send(service, demos.get_episode(index), index).outcome is Outcome.STORED
    assert service.learner.agent.obs_spec == {"state": [28]} and service.acks() == {R1: 3}
    assert send(service, short_state, 3).outcome is Outcome.REFUSED  # the layout stays the good one
    assert sum(service.refused.values()) == 2 and service.status()["refused_total"] == 2
    service.close()


def test_bad_values_lengths_and_task_are_refused_each_with_its_reason(tmp_path, demos):
    service = LearnerService(learner_config(tmp_path, task="pick_cube"), log=lambda line: None)
    good = demos.get_episode(1)
    n = len(good[keys.ACTION])
    cases = {
        "nan_action": (broken(good, keys.ACTION, lambda v: v.__setitem__((0, 1), np.nan)), "non_finite"),
        "inf_state": (broken(good, keys.STATE, lambda v: v.__setitem__((n - 1, 0), np.inf)), "non_finite"),
        "nan_reward": (broken(good, keys.REWARD, lambda v: v.__setitem__(2, np.nan)), "non_finite"),
        "action_1.01": (broken(good, keys.ACTION, lambda v: v.__setitem__((4, 3), 1.01)), "action_range"),
        "action_-7": (broken(good, keys.ACTION, lambda v: v.__setitem__((4, 0), -7.0)), "action_range"),
        "float64_state": ({**good, keys.STATE: good[keys.STATE].astype(np.float64)}, "layout"),
        "int_reward": ({**good, keys.REWARD: good[keys.REWARD].astype(np.int32)}, "layout"),
        "missing_success": ({k: v for k, v in good.items() if k != keys.SUCCESS}, "layout"),
        "extra_key": ({**good, "junk": np.zeros(n, np.float32)}, "layout"),
        "zero_length": ({k: v[:0] for k, v in good.items()}, "length"),
        "bool_byte_2": ({**good, keys.TERMINATED: np.full(n, 2, np.uint8).view(bool)}, "bool"),
    }
    for index, (name, (episode, reason)) in enumerate(cases.items()):
        result = send(service, episode, index)
        assert result.outcome is Outcome.REFUSED and result.reason == reason, (name, result)
    other_task = send(service, good, len(cases), task_meta={"task": "peg_insert"})
    assert other_task.reason == "task_meta" and "'peg_insert'" in other_task.message
    short_reward = {**good, keys.REWARD: good[keys.REWARD][:-1]}  # refused by wire.decode_episode: not acknowledged
    assert send(service, short_reward, 0, actor="/r2/actor").reason == "unreadable"
    assert send(service, demos.get_episode(2), len(cases) + 1).outcome is Outcome.STORED
    nearly_one = broken(good, keys.ACTION, lambda v: v.__setitem__((4, 3), 1.0005))  # within the tolerance
    assert send(service, nearly_one, len(cases) + 2).outcome is Outcome.STORED
    assert service.refused == {
        "non_finite": 3,
        "action_range": 2,
        "layout": 4,
        "unreadable": 1,
        "length": 1,
        "bool": 1,
        "task_meta": 1,
    }
    assert service.acks() == {R1: len(cases) + 3} and service.learner.store.n_episodes == 2
    assert [r["reason"] for r in read_settled(tmp_path / "run")][:3] == ["non_finite"] * 3
    service.close()


def test_unreadable_payloads_are_counted_not_acknowledged_and_huge_ones_are_refused_before_decoding(tmp_path, demos):
    service = LearnerService(learner_config(tmp_path, task="pick_cube", max_episode_steps=200), log=lambda line: None)
    payload = wire.encode_episode(
        demos.get_episode(0), {"actor_id": R1, "index": 0, "policy_version": -1, "success": True, "task_meta": {}}
    )
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0xFF
    garbage = [
        b"",
        b"\x00" * 7,
        b"\xff" * 64,
        bytes(flipped),
        wire.encode("policy", {"x": np.zeros(3)}, {}),
        wire.encode_episode({keys.ACTION: np.zeros((2, 4), np.float32)}, {"index": 0}),  # no actor id
        wire.encode_episode({keys.ACTION: np.zeros((2, 4), np.float32)}, {"actor_id": "/x" * 100, "index": 0}),
    ]
    for bad in garbage:
        assert service.ingest(bad).reason == "unreadable"
    huge = service.ingest(b"\x00" * (service.layout.max_payload_bytes(200) + 1))
    assert huge.reason == "too_large" and "max_episode_steps" in huge.message
    assert service.acks() == {} and service.refused == {"unreadable": len(garbage), "too_large": 1}
    assert service.ingest(payload).outcome is Outcome.STORED  # the intact resend
    assert not (tmp_path / "run" / REFUSED_LOG).exists()
    service.close()


def test_refused_episodes_stay_acknowledged_after_a_restart(tmp_path, demos):
    cfg = learner_config(tmp_path, task="pick_cube")
    service = LearnerService(cfg, log=lambda line: None)
    good = demos.get_episode(0)
    assert send(service, good, 0).outcome is Outcome.STORED
    assert send(service, broken(good, keys.ACTION, lambda v: v.__setitem__(0, 5.0)), 1).reason == "action_range"
    service.close()
    with open(tmp_path / "run" / REFUSED_LOG, "a") as f:
        f.write('{"actor_id": "/r1/act')  # a crash mid-line: that refusal was never acknowledged
    resumed = LearnerService(cfg, log=lambda line: None)
    assert resumed.acks() == {R1: 2}
    assert send(resumed, good, 1).outcome is Outcome.DUPLICATE
    assert send(resumed, broken(good, keys.REWARD, lambda v: v.__setitem__(0, np.nan)), 2).reason == "non_finite"
    assert send(resumed, demos.get_episode(1), 3).outcome is Outcome.STORED
    assert [(r["index"], r["reason"]) for r in read_settled(tmp_path / "run")] == [
        (1, "action_range"),
        (2, "non_finite"),
    ]
    resumed.close()
    assert LearnerService(cfg, log=lambda line: None).acks() == {R1: 4}


def test_pixel_layout_from_the_config_refuses_wrong_image_shapes_and_dtypes(demos):
    layout = EpisodeLayout.of_config(
        LearnerConfig(out="x", task="pick_cube", obs_mode="pixels", cameras=("front",), image_size=32).actor_layout()
    )
    state = demos.get_episode(0)
    good = add_camera({**state, keys.STATE: np.ascontiguousarray(state[keys.STATE][:, :18])}, 32)
    assert layout.check(good, 1000) == len(state[keys.ACTION])
    bad = {
        "image 64 px": add_camera(good, 64),
        "image float32": {**good, "image_front": good["image_front"] / 1.0},
        "image 1 channel": {**good, "image_front": np.ascontiguousarray(good["image_front"][..., :1])},
        "no capture time": {k: v for k, v in good.items() if k != "t_capture_front"},
    }
    for name, episode in bad.items():
        with pytest.raises(EpisodeMismatch, match="image_front|t_capture_front") as err:
            layout.check(episode, 1000)
        assert err.value.reason == "layout", name
    with pytest.raises(EpisodeMismatch, match="accepts 1..10"):
        layout.check(good, 10)
    with pytest.raises(EpisodeMismatch, match="same T") as err:
        layout.check({**good, keys.REWARD: good[keys.REWARD][:-1]}, 1000)
    assert err.value.reason == "length"


def test_config_and_demos_that_disagree_are_refused_at_start(tmp_path, demos):
    with pytest.raises(ValueError, match="disagree"):
        LearnerService(
            learner_config(tmp_path, task="pick_cube", obs_mode="pixels", cameras=("front",), demos=str(demos.path)),
            log=lambda line: None,
        )


def test_refusal_lines_are_rate_limited_per_reason():
    now = [0.0]
    log = RateLimitedLog(period_s=5.0, clock=lambda: now[0])
    assert log.line("nan", "a") == "a" and log.line("layout", "b") == "b"
    assert log.line("nan", "c") is None and log.line("nan", "d") is None
    now[0] = 5.0
    assert log.line("nan", "e") == "e (+2 more nan refusals not logged in the last 5 s)"
    assert log.line("nan", "f") is None


def test_episode_meta_of_the_wrong_type_is_refused_not_coerced(tmp_path, demos):
    """int() and str() used to turn index 0.5 or "0" into episode 0 and actor_id 5 into '5': stored, acknowledged."""
    service = LearnerService(learner_config(tmp_path, task="pick_cube"), log=lambda line: None)
    good = demos.get_episode(0)
    base = {"actor_id": R1, "index": 0, "policy_version": -1, "success": False, "task_meta": {}}
    bad_meta = {
        "float_index": {"index": 0.5},
        "str_index": {"index": "0"},
        "bool_index": {"index": True},
        "null_index": {"index": None},
        "negative_index": {"index": -1},
        "int_actor": {"actor_id": 5},
        "empty_actor": {"actor_id": ""},
        "10kB_actor": {"actor_id": "/r" + "x" * 10_000},
        "str_policy_version": {"policy_version": "3"},
        "list_task_meta": {"task_meta": [1]},
    }
    for name, change in bad_meta.items():
        result = service.ingest(wire.encode("episode", good, {**base, **change}))
        assert result.outcome is Outcome.REFUSED and result.reason == "unreadable", (name, result)
        assert len(result.message) < 400, (name, len(result.message))  # a 10 kB id is not echoed into the log
    assert service.acks() == {} and service.status()["episodes"] == 0
    assert service.ingest(wire.encode("episode", good, base)).outcome is Outcome.STORED
    assert service.acks() == {R1: 1}
    service.close()
