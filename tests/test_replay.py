"""Replay: frames stored once, n-step returns at episode ends, ring overwrite, exact mixing fractions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.replay import MixedSampler, ReplayBuffer

IMG = keys.image_key("front")


def _make_space(image: bool = False) -> gym.spaces.Dict:
    spaces = {keys.STATE: gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)}
    if image:
        spaces[IMG] = gym.spaces.Box(0, 255, (6, 5, 3), np.uint8)
    return gym.spaces.Dict(spaces)


def _obs(t: float, image: bool = False) -> dict[str, np.ndarray]:
    """State [t] (so a transition is identified by its obs); the image is filled with t."""
    obs = {keys.STATE: np.array([t], np.float32)}
    if image:
        obs[IMG] = np.full((6, 5, 3), int(t) % 256, np.uint8)
    return obs


def _add_episode_stepwise(
    rb: ReplayBuffer, start: float, rewards: list[float], terminated: bool, image: bool = False
) -> None:
    """Steps t = 0..T-1 with obs state start + t; the last transition ends the episode."""
    for t, r in enumerate(rewards):
        last = t == len(rewards) - 1
        rb.add(
            _obs(start + t, image),
            np.array([0.1 * t], np.float32),
            r,
            _obs(start + t + 1, image),
            terminated=last and terminated,
            truncated=last and not terminated,
        )


def _by_obs(batch) -> dict[float, tuple[float, float, float]]:
    """obs state -> (n-step reward, discount, next obs state) over a batch."""
    s = batch.obs[keys.STATE][:, 0].tolist()
    return {
        k: (r, d, n)
        for k, r, d, n in zip(
            s, batch.reward.tolist(), batch.discount.tolist(), batch.next_obs[keys.STATE][:, 0].tolist()
        )
    }


def test_n_step_returns_match_a_hand_computed_terminated_episode():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=32, n_step=3, gamma=0.5, seed=0)
    _add_episode_stepwise(rb, 0.0, [1.0, 2.0, 3.0, 4.0], terminated=True)
    assert len(rb) == 4
    seen = _by_obs(rb.sample(400))
    assert seen[0.0] == pytest.approx((1 + 0.5 * 2 + 0.25 * 3, 0.125, 3.0))  # three rewards, bootstrap from obs 3
    assert seen[1.0] == pytest.approx((2 + 0.5 * 3 + 0.25 * 4, 0.0, 4.0))  # reaches the terminal step: no bootstrap
    assert seen[2.0] == pytest.approx((3 + 0.5 * 4, 0.0, 4.0))
    assert seen[3.0] == pytest.approx((4.0, 0.0, 4.0))


def test_n_step_returns_bootstrap_after_a_truncated_episode():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=32, n_step=3, gamma=0.5, seed=0)
    _add_episode_stepwise(rb, 0.0, [1.0, 2.0, 3.0, 4.0], terminated=False)
    seen = _by_obs(rb.sample(400))
    assert seen[2.0] == pytest.approx((3 + 0.5 * 4, 0.25, 4.0))  # two rewards summed: gamma^2, bootstrap from obs 4
    assert seen[3.0] == pytest.approx((4.0, 0.5, 4.0))


def test_an_open_episode_gives_shorter_returns_up_to_the_newest_frame():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=32, n_step=3, gamma=0.5, seed=0)
    rb.add(_obs(0), np.zeros(1, np.float32), 1.0, _obs(1), False, False)
    rb.add(_obs(1), np.zeros(1, np.float32), 2.0, _obs(2), False, False)
    seen = _by_obs(rb.sample(200))
    assert seen[0.0] == pytest.approx((2.0, 0.25, 2.0))
    assert seen[1.0] == pytest.approx((2.0, 0.5, 2.0))


def test_a_stored_episode_bootstraps_its_last_step_from_its_last_obs():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=32, n_step=2, gamma=0.5, seed=0)
    ep = {
        keys.STATE: np.arange(3, dtype=np.float32)[:, None] + 10,
        keys.ACTION: np.zeros((3, 1), np.float32),
        keys.REWARD: np.array([1.0, 2.0, 3.0], np.float32),
        keys.TERMINATED: np.zeros(3, bool),
        keys.TRUNCATED: np.zeros(3, bool),
    }
    rb.add_episode(ep)
    assert len(rb) == 3
    seen = _by_obs(rb.sample(300))
    assert seen[10.0] == pytest.approx((2.0, 0.25, 12.0))
    assert seen[11.0] == pytest.approx((3.5, 0.25, 12.0))
    assert seen[12.0] == pytest.approx((3.0, 0.5, 12.0))  # no flag at the end: treated as truncated


def test_a_policy_steps_return_stops_where_a_take_over_starts_and_a_take_overs_runs_on_past_its_release():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=32, n_step=3, gamma=0.5, seed=0)
    flags = [False, False, True, True, False, False]  # the policy, then the operator for steps 2-3, then the policy
    for t, by_person in enumerate(flags):
        last = t == len(flags) - 1
        rb.add(_obs(t), np.zeros(1, np.float32), 1.0, _obs(t + 1), False, last, is_intervention=by_person)
    seen = _by_obs(rb.sample(600))
    assert seen[0.0] == pytest.approx((1 + 0.5, 0.25, 2.0))  # steps 0-1 (the policy's), bootstrap where it took over
    assert seen[1.0] == pytest.approx((1.0, 0.5, 2.0))  # the step it took over after: its own reward only
    assert seen[2.0] == pytest.approx((1 + 0.5 + 0.25, 0.125, 5.0))  # the operator's steps sum on into the policy's
    assert seen[3.0] == pytest.approx((1 + 0.5 + 0.25, 0.125, 6.0))
    assert seen[4.0] == pytest.approx((1 + 0.5, 0.25, 6.0))


def test_each_frame_is_stored_once_and_next_obs_images_come_from_the_next_row():
    rb = ReplayBuffer(_make_space(image=True), action_dim=1, capacity=10, n_step=1, gamma=0.9, seed=0)
    _add_episode_stepwise(rb, 0.0, [0.0] * 4, terminated=True, image=True)
    assert rb._obs[IMG].shape == (10, 6, 5, 3) and rb._obs[IMG].dtype == torch.uint8  # one array, one row per frame
    batch = rb.sample(64)
    assert torch.equal(batch.next_obs[IMG][:, 0, 0, 0].float(), batch.next_obs[keys.STATE][:, 0])
    assert torch.equal(batch.obs[IMG][:, 0, 0, 0].float() + 1, batch.next_obs[IMG][:, 0, 0, 0].float())


def test_ring_overwrite_never_links_transitions_across_episodes():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=23, n_step=3, gamma=0.9, seed=0)
    for e in range(20):  # episodes of 5 steps with states 100e .. 100e + 5
        _add_episode_stepwise(rb, 100.0 * e, [1.0] * 5, terminated=e % 2 == 0)
    assert len(rb) <= 23
    batch = rb.sample(2000)
    for s, n, d in zip(
        batch.obs[keys.STATE][:, 0].tolist(), batch.next_obs[keys.STATE][:, 0].tolist(), batch.discount.tolist()
    ):
        episode, t = divmod(int(s), 100)
        k = min(3, 5 - t)  # steps summed before the episode ends
        assert n == s + k  # next obs from the same episode
        assert d == pytest.approx(0.0 if episode % 2 == 0 and t + k == 5 else 0.9**k)
        assert episode >= 15  # only the newest ~4 episodes survive in 23 rows


def test_add_refuses_an_obs_that_does_not_continue_the_open_episode():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=16, seed=0)
    rb.add(_obs(0), np.zeros(1, np.float32), 0.0, _obs(1), False, False)
    with pytest.raises(ValueError, match="terminated=True or truncated=True"):
        rb.add(_obs(5), np.zeros(1, np.float32), 0.0, _obs(6), False, False)


def test_bad_inputs_get_clear_errors():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=16, seed=0)
    with pytest.raises(ValueError, match="empty"):
        rb.sample(4)
    with pytest.raises(ValueError, match="extras"):
        rb.add(_obs(0), np.zeros(1, np.float32), 0.0, _obs(1), False, False, success=True)
    with pytest.raises(ValueError, match=r"expected \(1,\)"):
        rb.add(_obs(0), np.zeros(2, np.float32), 0.0, _obs(1), False, True)
    with pytest.raises(ValueError, match="finite"):
        rb.add(_obs(0), np.array([np.nan], np.float32), 0.0, _obs(1), False, True)


def test_extras_come_back_with_their_transitions():
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=16, seed=0)
    rb.add(
        _obs(0),
        np.zeros(1, np.float32),
        0.0,
        _obs(1),
        False,
        False,
        base_action=np.array([0.5], np.float32),
        is_intervention=True,
    )
    rb.add(_obs(1), np.zeros(1, np.float32), 0.0, _obs(2), False, True)
    batch = rb.sample(100)
    first = batch.obs[keys.STATE][:, 0] == 0
    assert torch.all(batch.is_intervention == first)
    assert torch.all(batch.base_action[:, 0] == torch.where(first, 0.5, 0.0))


def _filled(reward: float, seed: int) -> ReplayBuffer:
    rb = ReplayBuffer(_make_space(), action_dim=1, capacity=64, seed=seed)
    _add_episode_stepwise(rb, 0.0, [reward] * 10, terminated=True)
    return rb


@pytest.mark.parametrize(
    "fractions,batch_size,expected",
    [((0.5, 0.5), 256, (128, 128)), ((0.3, 0.7), 10, (3, 7)), ((0.5, 0.5), 7, (4, 3)), ((0.25, 0.75), 1, (0, 1))],
)
def test_mixed_sampler_draws_exact_fractions_every_batch(fractions, batch_size, expected):
    sampler = MixedSampler([(_filled(0.0, 0), fractions[0]), (_filled(1.0, 1), fractions[1])])
    for _ in range(5):
        batch = sampler.sample(batch_size)
        assert len(batch) == batch_size
        assert int(batch.reward.sum()) == expected[1]  # rewards are 1 only in the second buffer


def test_mixed_sampler_marks_exactly_the_rows_drawn_from_the_demo_sources():
    sampler = MixedSampler([(_filled(0.0, 0), 0.3), (_filled(1.0, 1), 0.7)], demo_sources=(1,))
    batch = sampler.sample(10)
    assert batch.is_demo.tolist() == [False] * 3 + [True] * 7
    assert torch.equal(batch.is_demo, batch.reward == 1.0)  # the demo buffer is the one with reward 1
    assert MixedSampler([(_filled(0.0, 0), 1.0)]).sample(4).is_demo is None  # no demo sources: no mask
    with pytest.raises(ValueError, match="index"):
        MixedSampler([(_filled(0.0, 0), 1.0)], demo_sources=(1,))


def test_mixed_sampler_refuses_fractions_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        MixedSampler([(_filled(0.0, 0), 0.5), (_filled(1.0, 1), 0.6)])


def test_auto_capacity_keeps_200k_for_state_and_shrinks_to_fit_ram_for_images_and_too_big_is_refused():
    from robot_rl.replay import sizing

    state = {"state": [28]}
    pixels = {"image_front": [128, 128, 3], "image_wrist": [128, 128, 3], "state": [18]}
    assert sizing.auto_capacity(state) == sizing.DEFAULT_CAPACITY
    cap = sizing.auto_capacity(pixels)
    assert 1000 <= cap < sizing.DEFAULT_CAPACITY and cap % 1000 == 0
    assert sizing.row_bytes(pixels) * cap <= sizing.AUTO_RAM_SHARE * sizing.ram_bytes()
    assert sizing.check_capacity(cap, pixels) == pytest.approx(sizing.row_bytes(pixels) * cap / 1e9)
    with pytest.raises(ValueError, match=r"needs ~\d+\.\d GB, more than 60% .* set --replay-capacity <= \d+"):
        sizing.check_capacity(10**8, pixels, option="--replay-capacity")
