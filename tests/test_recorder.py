"""EpisodeRecorder: row alignment, defaults, flat and dict observations, discard, real stores."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from robot_rl import keys
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore


def _dict_obs(t: int) -> dict[str, np.ndarray]:
    """Observation number t: state and image both encode t so rows can be checked."""
    return {
        keys.STATE: np.full(5, t, np.float32),
        keys.image_key("front"): np.full((8, 8, 3), t, np.uint8),
        keys.image_key("wrist"): np.full((8, 8, 3), 100 + t, np.uint8),
    }


def _record_dict_episode(rec: EpisodeRecorder, length: int, success_at: int | None) -> None:
    rec.start(_dict_obs(0), {"t_capture": 0.0})
    for t in range(length):
        done = success_at == t
        info = {"success": done, "t_capture": 0.1 * (t + 1), "t_capture_front": 0.1 * (t + 1) - 0.02}
        rec.step(
            np.full(3, t / 10, np.float64), _dict_obs(t + 1), float(done), done, False, info, is_intervention=t % 2 == 1
        )
        if done:
            break


def test_row_t_holds_obs_t_action_t_and_the_reward_that_followed():
    store = MemoryEpisodeStore()
    rec = EpisodeRecorder(store)
    _record_dict_episode(rec, length=6, success_at=4)
    assert rec.end() == 0 and not rec.recording
    ep = store.get_episode(0)
    assert len(ep[keys.ACTION]) == 5  # steps 0..4; the observation after the last step is not stored
    assert ep[keys.STATE][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert ep[keys.image_key("wrist")][:, 0, 0, 0].tolist() == [100, 101, 102, 103, 104]
    assert np.allclose(ep[keys.ACTION][:, 0], [0.0, 0.1, 0.2, 0.3, 0.4]) and ep[keys.ACTION].dtype == np.float32
    assert ep[keys.REWARD].tolist() == [0, 0, 0, 0, 1]
    assert ep[keys.TERMINATED].tolist() == [False, False, False, False, True]
    assert ep[keys.SUCCESS].tolist() == [False, False, False, False, True]
    assert ep[keys.TRUNCATED].tolist() == [False] * 5
    assert ep[keys.IS_INTERVENTION].tolist() == [False, True, False, True, False]
    assert np.allclose(ep[keys.T_CAPTURE], [0.0, 0.1, 0.2, 0.3, 0.4])
    # camera time from info when given, else the state's capture time
    assert np.allclose(ep[keys.t_capture_key("front")], [0.0, 0.08, 0.18, 0.28, 0.38])
    assert np.allclose(ep[keys.t_capture_key("wrist")], ep[keys.T_CAPTURE])


def test_missing_optional_keys_get_defaults_so_every_episode_has_the_same_keys():
    store = MemoryEpisodeStore()
    rec = EpisodeRecorder(store)
    _record_dict_episode(rec, length=3, success_at=None)
    rec.end()
    ep = store.get_episode(0)
    assert set(keys.STEP_KEYS) <= set(ep)
    assert np.array_equal(ep[keys.BASE_ACTION], np.zeros((3, 3), np.float32))
    assert np.array_equal(ep[keys.POLICY_ACTION], ep[keys.ACTION])
    assert ep[keys.TRUNCATED].tolist() == [False, False, True]  # ended by the caller: last row truncated
    rec.start(_dict_obs(0))
    rec.step(np.ones(3), _dict_obs(1), 0.0, False, True, {}, base_action=np.full(3, 0.5), policy_action=np.zeros(3))
    assert rec.end() == 1
    second = store.get_episode(1)
    assert second[keys.BASE_ACTION].tolist() == [[0.5, 0.5, 0.5]]
    assert second[keys.POLICY_ACTION].tolist() == [[0.0, 0.0, 0.0]]
    assert second[keys.SUCCESS].tolist() == [False]


def test_flat_observations_are_stored_as_state_from_a_real_gymnasium_env(tmp_path):
    env = gym.make("Pendulum-v1")
    store = EpisodeStore.create(tmp_path / "pendulum.zarr", {"task": "Pendulum-v1"})
    rec = EpisodeRecorder(store)
    obs, info = env.reset(seed=3)
    first_obs = obs.copy()
    rec.start(obs, info)
    actions = []
    for _ in range(200):
        action = env.action_space.sample()
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        rec.step(action, obs, reward, terminated, truncated, info)
        if terminated or truncated:
            break
    rec.end()
    ep = EpisodeStore.open(tmp_path / "pendulum.zarr").get_episode(0)
    assert ep[keys.STATE].shape == (200, 3) and ep[keys.STATE].dtype == np.float32
    assert ep[keys.STATE][0].tobytes() == first_obs.tobytes()
    assert ep[keys.ACTION].tobytes() == np.stack(actions).astype(np.float32).tobytes()
    assert ep[keys.TRUNCATED][-1] and not ep[keys.TERMINATED].any()  # gymnasium's 200-step time limit
    assert np.all(np.diff(ep[keys.T_CAPTURE]) >= 0)  # monotonic clock when the env gives no t_capture


def test_discard_drops_the_episode_and_the_next_one_starts_clean():
    store = MemoryEpisodeStore()
    rec = EpisodeRecorder(store)
    _record_dict_episode(rec, length=4, success_at=None)
    rec.discard()
    assert store.n_episodes == 0 and not rec.recording
    _record_dict_episode(rec, length=2, success_at=None)
    assert rec.end() == 0
    assert store.episode_lengths.tolist() == [2]


def test_misuse_is_reported_with_what_to_do():
    rec = EpisodeRecorder(MemoryEpisodeStore())
    with pytest.raises(RuntimeError, match="step\\(\\) before start\\(\\)"):
        rec.step(np.zeros(3), _dict_obs(1), 0.0, False, False, {})
    rec.start(_dict_obs(0))
    with pytest.raises(RuntimeError, match="end\\(\\) with no recorded steps"):
        rec.end()
    rec.step(np.zeros(3), _dict_obs(1), 0.0, False, False, {})
    with pytest.raises(RuntimeError, match="call end\\(\\) or discard\\(\\) first"):
        rec.start(_dict_obs(0))
    with pytest.raises(ValueError, match="base_action must have the action's shape \\(3,\\); got \\(2,\\)"):
        rec.step(np.zeros(3), _dict_obs(2), 0.0, False, False, {}, base_action=np.zeros(2))
    with pytest.raises(ValueError, match="clash with step keys"):
        EpisodeRecorder(MemoryEpisodeStore()).start({keys.ACTION: np.zeros(2)})


def test_recorded_episode_survives_a_reopen_byte_for_byte(tmp_path):
    path = tmp_path / "rec.zarr"
    memory, disk = MemoryEpisodeStore(), EpisodeStore.create(path, {"task": "synthetic"})
    for store in (memory, disk):
        rec = EpisodeRecorder(store)
        for length in (3, 5):
            _record_dict_episode(rec, length=length, success_at=length - 1)
            rec.end()
    reopened = EpisodeStore.open(path)
    assert reopened.episode_lengths.tolist() == [3, 5]
    for i in range(2):
        want, got = memory.get_episode(i), reopened.get_episode(i)
        assert sorted(got) == sorted(want)
        assert all(got[k].tobytes() == want[k].tobytes() and got[k].dtype == want[k].dtype for k in want)
