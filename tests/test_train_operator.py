"""The simulated operator in the in-process loop: it takes over after warm-up within its budget, its corrections
are recorded and go to the demo replay (HIL-SERL), the step that led to a take-over carries the RLIF penalty, the
intervention rate is logged and plotted, and a resumed run continues exactly."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from safetensors.numpy import load_file
from tiny_train import pick_cube_config

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.learner import episode_log
from robot_rl.learner.corrections import (
    add_interventions,
    add_own_success,
    intervention_segments,
    penalize_takeovers,
)
from robot_rl.replay import ReplayBuffer
from robot_rl.training import curves
from robot_rl.training.config import TrainConfig, config_for_resume
from robot_rl.training.loop import train

EPISODE, WARMUP, TAKEOVER, MAX_INTERVENTIONS, MAX_FRACTION = 50, 50, 5, 2, 0.3


def _operator_cfg(out: Path, steps: int, **over) -> TrainConfig:
    """pick_cube from state, 50-step episodes, no demos, a tiny learner, the operator on after 50 warm-up steps."""
    fields = dict(
        max_episode_steps=EPISODE,
        scripted_demos=0,
        warmup_steps=WARMUP,
        operator=True,
        patience_steps=5,
        takeover_steps=TAKEOVER,
        max_interventions=MAX_INTERVENTIONS,
        max_fraction=MAX_FRACTION,
        intervention_penalty=-1.0,
    )
    return pick_cube_config(out, steps, **{**fields, **over})


def _train_quietly(cfg: TrainConfig):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = train(cfg)
    return result, out.getvalue()


def _episodes(run_dir: Path) -> list[dict[str, np.ndarray]]:
    store = EpisodeStore.open(run_dir / "episodes", mode="r")
    return [store.get_episode(i) for i in range(store.n_episodes)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """200 steps straight, and 100 + resumed to 200, both with the operator."""
    root = tmp_path_factory.mktemp("operator")
    straight = _train_quietly(_operator_cfg(root / "straight", steps=200))
    first = _train_quietly(_operator_cfg(root / "split", steps=100))
    resumed = _train_quietly(config_for_resume(root / "split", {"steps": 200}))
    return straight, first, resumed


def test_the_operator_takes_over_after_warm_up_within_its_budget_and_steps_record_both_actions(runs):
    (straight, _), _, _ = runs
    episodes = _episodes(straight.run_dir)
    assert len(episodes) == 4
    assert not episodes[0][keys.IS_INTERVENTION].any()  # the warm-up episode: the operator only watches
    total = 0
    for ep in episodes[1:]:
        iv = ep[keys.IS_INTERVENTION]
        segments = intervention_segments(iv)
        assert 1 <= len(segments) <= MAX_INTERVENTIONS, segments
        assert all(e - s <= TAKEOVER for s, e in segments)
        assert iv.sum() <= min(MAX_INTERVENTIONS * TAKEOVER, int(MAX_FRACTION * EPISODE))
        differs = np.any(ep[keys.POLICY_ACTION] != ep[keys.ACTION], axis=1)
        np.testing.assert_array_equal(differs, iv)  # the operator's action replaced the policy's exactly there
        total += int(iv.sum())
    assert total >= 10
    # HIL-SERL: with no demos, the demo replay holds exactly the intervened transitions
    assert straight.replay_transitions == {"online": 200, "demos": total}


def test_the_store_keeps_raw_rewards_and_the_penalty_marks_only_the_step_that_led_to_each_take_over(runs):
    (straight, _), _, _ = runs
    for ep in _episodes(straight.run_dir):
        assert not (ep[keys.REWARD] < 0).any()  # the store holds the env's raw 0/1 rewards
        learned = penalize_takeovers(ep, -1.0)  # what the learner core puts into replay
        penalised = np.flatnonzero(learned[keys.REWARD] < 0)
        expected = [s - 1 for s, _ in intervention_segments(ep[keys.IS_INTERVENTION])]
        assert penalised.tolist() == expected
        assert np.all(learned[keys.REWARD][penalised] == -1.0)  # the sparse reward is 0 there: only the penalty
        assert not ep[keys.IS_INTERVENTION][penalised].any()  # the policy's own step, not the operator's


def test_the_intervention_rate_is_in_the_log_line_the_episode_records_eval_jsonl_and_the_curve(runs):
    (straight, log), _, _ = runs
    records = episode_log.read(straight.run_dir)
    episodes = _episodes(straight.run_dir)
    assert [r["interventions"] for r in records] == [int(ep[keys.IS_INTERVENTION].sum()) for ep in episodes]
    assert [r["env_steps"] for r in records] == [50, 100, 150, 200]
    assert records[1]["intervention_rate"] == pytest.approx(records[1]["interventions"] / EPISODE)
    rates = [r["intervention_rate"] for r in records]
    by_step = {e["env_steps"]: e["intervention_rate_recent"] for e in straight.evals}
    assert by_step[0] == 0.0
    assert by_step[100] == pytest.approx(
        np.mean(rates[:1])
    )  # evaluated at step 100: the episode ending there is not in
    assert by_step[200] == pytest.approx(np.mean(rates[:3]), abs=1e-6)
    assert f"intervention rate {np.mean(rates[:3]):.1%}" in log
    assert (straight.run_dir / curves.CURVE_PNG).stat().st_size > 10_000


def test_a_resumed_operator_run_continues_exactly_like_an_uninterrupted_one(runs):
    (straight, _), (first, _), (resumed, _) = runs
    assert first.progress.episodes == 2 and resumed.progress.env_steps == straight.progress.env_steps == 200
    a, b = _episodes(straight.run_dir), _episodes(resumed.run_dir)
    assert len(a) == len(b) == 4
    for ea, eb in zip(a, b):
        for key in (keys.ACTION, keys.POLICY_ACTION, keys.IS_INTERVENTION, keys.REWARD, keys.STATE):
            np.testing.assert_array_equal(ea[key], eb[key], err_msg=key)
    assert resumed.replay_transitions == straight.replay_transitions  # the demo replay was rebuilt from the store
    no_wall = [
        [{k: v for k, v in r.items() if k != "wall_s"} for r in episode_log.read(run.run_dir)]
        for run in (resumed, straight)
    ]
    assert no_wall[0] == no_wall[1]  # the same episode log, learner wall-clock aside
    strip = [{k: v for k, v in e.items() if k not in ("wall_s", "eval_s")} for e in straight.evals]
    assert strip == [{k: v for k, v in e.items() if k not in ("wall_s", "eval_s")} for e in resumed.evals]
    ta = {f.name: load_file(f) for f in sorted((straight.checkpoint / "agent").glob("*.safetensors"))}
    tb = {f.name: load_file(f) for f in sorted((resumed.checkpoint / "agent").glob("*.safetensors"))}
    assert ta.keys() == tb.keys() and ta
    for name in ta:  # the same updates on the same batches, demo replay included
        for k in ta[name]:
            np.testing.assert_array_equal(ta[name][k], tb[name][k], err_msg=f"{name}/{k}")


def test_without_intervention_to_demos_the_corrections_stay_online_only(tmp_path):
    result, _ = _train_quietly(
        _operator_cfg(tmp_path / "run", steps=100, intervention_to_demos=False, intervention_penalty=0.0)
    )
    episodes = _episodes(result.run_dir)
    assert sum(int(ep[keys.IS_INTERVENTION].sum()) for ep in episodes) > 0
    assert all(np.all(ep[keys.REWARD] >= 0) for ep in episodes)  # no penalty asked for
    assert result.replay_transitions == {"online": 100, "demos": 0}


def test_the_operator_is_refused_on_a_non_sim_env_and_a_positive_penalty_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--operator needs a sim task .* Pendulum-v1 is not one"):
        train(_operator_cfg(tmp_path / "run", steps=100, task=None, env_id="Pendulum-v1"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match=r"give a value <= 0 \(e.g. -1\), got 1.0"):
        _operator_cfg(tmp_path / "run", steps=100, intervention_penalty=1.0)
    with pytest.raises(ValueError, match="max_fraction in \\[0, 1\\]"):
        _operator_cfg(tmp_path / "run", steps=100, max_fraction=1.5)


def test_intervened_transitions_enter_the_replay_one_take_over_at_a_time_bootstrapping_where_it_handed_back():
    space = gym.spaces.Dict({keys.STATE: gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)})
    replay = ReplayBuffer(space, action_dim=1, capacity=32, n_step=3, gamma=0.5, seed=0)
    n = 10
    iv = np.zeros(n, bool)
    iv[[2, 3, 7, 8, 9]] = True  # a take-over handed back at step 4, one running to the episode's end
    episode = {
        keys.STATE: np.arange(n, dtype=np.float32)[:, None],
        keys.ACTION: np.arange(n, dtype=np.float32)[:, None],
        keys.REWARD: np.arange(n, dtype=np.float32),
        keys.TERMINATED: np.eye(n, dtype=bool)[-1],
        keys.TRUNCATED: np.zeros(n, bool),
        keys.IS_INTERVENTION: iv,
    }
    assert intervention_segments(iv) == [(2, 4), (7, 10)]
    assert add_interventions(replay, episode) == 5 and len(replay) == 5
    batch = replay.sample(200)
    state, nxt = batch.obs[keys.STATE][:, 0].numpy(), batch.next_obs[keys.STATE][:, 0].numpy()
    assert set(state.tolist()) == {2.0, 3.0, 7.0, 8.0, 9.0} and bool(batch.is_intervention.all())
    for s, x, r, d in zip(state, nxt, batch.reward.numpy(), batch.discount.numpy()):
        if s in (2.0, 3.0):  # 2 -> 3 -> 4 (handed back, truncated): bootstrap from state 4
            assert x == 4.0 and d > 0
            assert r == pytest.approx(2 + 0.5 * 3 if s == 2.0 else 3)
        if s == 8.0:  # 8 -> 9 -> terminal: no bootstrap
            assert r == pytest.approx(8 + 0.5 * 9) and d == 0


def test_own_successes_join_the_demo_replay_only_when_asked_and_only_without_a_take_over(tmp_path):
    space = gym.spaces.Dict({keys.STATE: gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)})
    n = 6

    def episode(success: bool, takeover: bool) -> dict[str, np.ndarray]:
        iv = np.zeros(n, bool)
        iv[2:4] = takeover
        return {
            keys.STATE: np.arange(n, dtype=np.float32)[:, None],
            keys.ACTION: np.zeros((n, 1), np.float32),
            keys.REWARD: np.eye(n, dtype=np.float32)[-1] * success,
            keys.TERMINATED: np.eye(n, dtype=bool)[-1] & success,
            keys.TRUNCATED: np.eye(n, dtype=bool)[-1] & (not success),
            keys.SUCCESS: np.eye(n, dtype=bool)[-1] & success,
            keys.IS_INTERVENTION: iv,
        }

    replay = ReplayBuffer(space, action_dim=1, capacity=32, n_step=1, gamma=0.5, seed=0)
    assert add_own_success(replay, episode(False, False)) == 0 and len(replay) == 0
    assert add_own_success(replay, episode(True, True)) == 0 and len(replay) == 0  # its take-over went in already
    assert add_own_success(replay, episode(True, False)) == n and len(replay) == n

    # in a run: the scripted warm-up policy succeeds on its own; its episodes join the 3 demos' replay when asked
    stored = {}
    for asked in (False, True):
        cfg = pick_cube_config(
            tmp_path / str(asked), 150, warmup_policy="scripted", warmup_steps=150, successes_to_demos=asked
        )
        result, _ = _train_quietly(cfg)
        demos = EpisodeStore.open(result.run_dir / "demos", mode="r").n_steps
        won = sum(len(ep[keys.ACTION]) for ep in _episodes(result.run_dir) if ep[keys.SUCCESS].any())
        assert won > 0
        stored[asked] = result.replay_transitions["demos"] - demos
    assert stored == {False: 0, True: won}
