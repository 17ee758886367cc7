"""The learning core (`robot_rl.learner.core.Learner`) that `robot-rl train` and the learner node share: episodes
go durably into a real zarr store with raw rewards, the take-over penalty is applied once as they enter replay,
updates run in utd chunks against the budget, one episode-log schema, and a restarted core refills replay, counts
and the log from the store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl import keys
from robot_rl.agents import AgentConfig
from robot_rl.data.store import EpisodeStore
from robot_rl.errors import RunError
from robot_rl.learner import episode_log
from robot_rl.learner.checkpoint import find_checkpoint
from robot_rl.learner.core import Learner
from robot_rl.learner.core_config import LearnerCoreConfig
from robot_rl.learner.ledger import SOURCE_KEYS

STATE_DIM, ACTION_DIM, STEPS = 6, 3, 20
OBS_SPACE = gym.spaces.Dict({keys.STATE: gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32)})
ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
SMALL_AGENT = AgentConfig(hidden_dims=(16, 16), batch_size=8, utd_ratio=2, n_step=1)


def _episode(seed: int, takeover: tuple[int, int] | None = None, success: bool = False) -> dict[str, np.ndarray]:
    """A recorder-shaped episode of STEPS steps, reward 0 (1 at the end on success), optionally a take-over."""
    rng = np.random.default_rng(seed)
    flags = np.zeros(STEPS, bool)
    if takeover:
        flags[takeover[0] : takeover[1]] = True
    action = rng.uniform(-1, 1, (STEPS, ACTION_DIM)).astype(np.float32)
    reward = np.zeros(STEPS, np.float32)
    reward[-1] = float(success)
    end = np.zeros(STEPS, bool)
    end[-1] = True
    return {
        keys.STATE: rng.normal(size=(STEPS, STATE_DIM)).astype(np.float32),
        keys.ACTION: action,
        keys.BASE_ACTION: np.zeros_like(action),
        keys.POLICY_ACTION: action.copy(),
        keys.REWARD: reward,
        keys.TERMINATED: end & success,
        keys.TRUNCATED: end & (not success),
        keys.SUCCESS: end & success,
        keys.IS_INTERVENTION: flags,
        keys.T_CAPTURE: np.arange(STEPS, dtype=np.float64) * 0.1,
    }


def _learner(run: Path, penalty: float = 0.0, resume: bool = False, agent_cfg: AgentConfig = SMALL_AGENT) -> Learner:
    store = EpisodeStore.open_or_create(run / "episodes", {"task": "test", "obs_mode": "state"})
    learner = Learner(
        LearnerCoreConfig(intervention_penalty=penalty, replay_capacity=500),
        run,
        store=store,
        log=lambda line: None,
        min_steps_to_train=30,
    )
    ckpt = find_checkpoint(run, warn=None) if resume else None
    if ckpt is not None:
        learner.resume_agent(ckpt, base_policy=None)
    else:
        learner.new_agent(OBS_SPACE, ACTION_SPACE, agent_cfg)
    learner.open_replays(None, intervention_rows=100, checkpoint=ckpt)
    return learner


def test_the_penalty_is_applied_once_as_an_episode_enters_replay_and_the_store_keeps_raw_rewards(tmp_path):
    learner = _learner(tmp_path / "run", penalty=-1.0)
    plain, corrected = _episode(0, success=True), _episode(1, takeover=(5, 9))
    assert [learner.add_episode(plain), learner.add_episode(corrected)] == [0, 1]
    stored = learner.store.get_episode(1)
    np.testing.assert_array_equal(stored[keys.REWARD], corrected[keys.REWARD])  # raw: all 0
    replay_rewards = learner.online._reward[STEPS : 2 * STEPS].numpy()  # the second episode's rows
    assert np.flatnonzero(replay_rewards).tolist() == [4] and replay_rewards[4] == -1.0  # the step before the take-over
    assert learner.online._reward[STEPS - 1].item() == 1.0  # the first episode's success reward, unpenalised
    assert len(learner.demos) == 4 and len(learner.sampler.sources) == 2  # corrections joined the batches
    learner.close()


def test_updates_run_in_utd_chunks_and_pay_off_the_budget(tmp_path):
    learner = _learner(tmp_path / "run")
    assert not learner.can_update and learner.owed_updates == 0
    learner.add_episode(_episode(0))
    assert learner.owed_updates == 0  # 20 of min_steps_to_train 30 transitions: still warming up
    learner.add_episode(_episode(1))
    assert learner.owed_updates == 2 * (40 - 30)
    assert learner.update(5) == 5 and learner.agent.step == 5 and learner.owed_updates == 15
    assert learner.update_owed(100) == 15 and learner.agent.step == 20 and learner.owed_updates == 0
    assert set(learner.metrics) >= {"critic_loss"}
    learner.close()


def test_one_episode_log_schema_for_in_process_and_actor_episodes(tmp_path):
    local_run = _learner(tmp_path / "local")
    local_run.add_episode(_episode(0, success=True))  # in process: no sender, the loop's own store
    actors = Learner(LearnerCoreConfig(replay_capacity=500), tmp_path / "node", log=lambda line: None)
    actors.new_agent(OBS_SPACE, ACTION_SPACE, SMALL_AGENT)
    actors.open_replays(None)
    sender = {"actor_id": "/r1/actor", "index": 0, "policy_version": 7, "task_meta": {"task": "test"}}
    assert actors.add_episode(_episode(1, takeover=(0, 5)), sender) == 0  # the node's store: made by this episode
    [local], [remote] = episode_log.read(tmp_path / "local"), episode_log.read(tmp_path / "node")
    assert (
        local.keys()
        == remote.keys()
        == {
            "episode",
            "actor_id",
            "index",
            "policy_version",
            "env_steps",
            "steps",
            "return",
            "success",
            "interventions",
            "intervention_rate",
            "updates",
            "wall_s",
        }
    )
    assert (local["actor_id"], local["index"], local["success"], local["return"]) == ("local", 0, True, 1.0)
    assert (remote["actor_id"], remote["policy_version"], remote["episode"], remote["env_steps"]) == (
        "/r1/actor",
        7,
        0,
        STEPS,
    )
    assert (remote["interventions"], remote["intervention_rate"]) == (5, 0.25)
    assert all(k in actors.store.get_episode(0) for k in SOURCE_KEYS)  # the sender is recoverable from the store
    assert actors.store.meta["task"] == "test" and actors.store.meta["source"] == "actors"
    local_run.close()
    actors.close()


def test_a_restarted_learner_refills_replay_counts_and_lost_log_lines_from_the_store(tmp_path):
    run = tmp_path / "run"
    learner = _learner(run, penalty=-1.0)
    for i in range(2):
        learner.add_episode(_episode(i, takeover=(3, 6)))
    learner.update(4)
    learner.checkpoint({"test": True})
    learner.add_episode(_episode(2, takeover=(3, 6)))  # after the checkpoint
    learner.close()
    lines = (run / episode_log.TRAIN_LOG).read_text().splitlines()
    (run / episode_log.TRAIN_LOG).write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])  # a crash tore the last line

    resumed = _learner(run, penalty=-1.0, resume=True)
    assert (resumed.episodes, resumed.env_steps, resumed.agent.step) == (3, 3 * STEPS, 4)
    assert len(resumed.online) == 3 * STEPS and len(resumed.demos) == 3 * 3  # corrections back in the demo replay
    assert resumed.online._reward[2 * STEPS + 2].item() == -1.0  # the penalty re-applied from the raw store
    records = episode_log.read(run)
    assert [r["episode"] for r in records] == [0, 1, 2] and records[2]["env_steps"] == 3 * STEPS
    assert records[2]["updates"] is None and records[1]["updates"] == 0  # rebuilt from the store: not known
    assert resumed.owed_updates == 2 * (3 * STEPS - 30) - 4
    resumed.close()


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe garbage \x00\n",
        b"[1, 2]\n",
        b'{"episode": 1, "success": "yes"}\n',
        b'{"episode": 7, "success": true}\n',
    ],
    ids=["binary", "a JSON list", "success not a bool", "another episode's line"],
)
def test_a_damaged_episode_log_line_is_rebuilt_from_the_store_on_resume(tmp_path, damage):
    """A hand-edited or damaged train_episodes.jsonl must not end a resume: from the first unusable line on, the
    lines are rebuilt from the store (one per stored episode, in order)."""
    run = tmp_path / "run"
    learner = _learner(run)
    for i in range(3):
        learner.add_episode(_episode(i))
    learner.checkpoint({"test": True})
    learner.close()
    lines = (run / episode_log.TRAIN_LOG).read_bytes().splitlines(keepends=True)
    (run / episode_log.TRAIN_LOG).write_bytes(lines[0] + damage + lines[2])

    resumed = _learner(run, resume=True)
    assert resumed.episodes == 3
    records = episode_log.read(run)
    assert [r["episode"] for r in records] == [0, 1, 2] and all(isinstance(r["success"], bool) for r in records)
    assert records[0]["updates"] == 0 and records[1]["updates"] is None  # kept, then rebuilt from the store
    resumed.close()


def test_a_checkpoint_counting_more_episodes_than_the_store_holds_is_refused(tmp_path):
    run = tmp_path / "run"
    learner = _learner(run)
    for i in range(2):
        learner.add_episode(_episode(i))
    learner.checkpoint({"test": True})
    learner.close()
    empty = tmp_path / "empty"  # a run dir whose store lost its episodes, beside that checkpoint of 2
    empty.mkdir()
    (run / "checkpoints").rename(empty / "checkpoints")
    with pytest.raises(RunError, match="holds 0 episodes but the checkpoint counted 2"):
        _learner(empty, resume=True)


def test_the_entropy_target_follows_the_share_of_recent_episodes_that_succeed_without_a_take_over(tmp_path):
    cfg = AgentConfig(hidden_dims=(16, 16), batch_size=8, utd_ratio=2, n_step=1, target_entropy_final=-6.0)
    learner = _learner(tmp_path / "run", agent_cfg=cfg)
    start = -ACTION_DIM / 2.0  # the default target: -1.5
    assert learner.agent.target_entropy == start
    for i in range(9):  # fewer than half the window (20): not judged yet
        learner.add_episode(_episode(i, success=True))
    assert learner.agent.target_entropy == start
    learner.add_episode(_episode(9, success=True))  # 10 of 10 on its own: the final target
    assert learner.agent.target_entropy == pytest.approx(-6.0)
    for i in range(10, 20):  # 10 more that succeed only with a take-over: they do not count as its own
        learner.add_episode(_episode(i, takeover=(3, 8), success=True))
    assert learner.agent.target_entropy == pytest.approx(start + (-6.0 - start) * 10 / 20)
    assert learner.status()["target_entropy"] == pytest.approx(learner.agent.target_entropy)
    learner.checkpoint({"note": "test"})
    learner.close()
    restarted = _learner(tmp_path / "run", resume=True)  # the target comes back from the refilled episode log
    assert restarted.agent.target_entropy == pytest.approx(start + (-6.0 - start) * 10 / 20)
    restarted.close()
    fixed = _learner(tmp_path / "fixed")  # no final target: fixed whatever the success
    for i in range(12):
        fixed.add_episode(_episode(i, success=True))
    assert fixed.agent.target_entropy == start
    fixed.close()


def test_a_ratcheted_entropy_target_keeps_the_best_success_so_far_and_comes_back_after_a_resume(tmp_path):
    cfg = AgentConfig(
        hidden_dims=(16, 16),
        batch_size=8,
        utd_ratio=2,
        n_step=1,
        target_entropy_final=-6.0,
        target_entropy_ratchet=True,
    )
    learner = _learner(tmp_path / "run", agent_cfg=cfg)
    for i in range(10):  # 10 of 10 on its own: the final target
        learner.add_episode(_episode(i, success=True))
    assert learner.agent.target_entropy == pytest.approx(-6.0)
    for i in range(10, 30):  # then only failures: the recent rate falls to 0, the target stays where it got to
        learner.add_episode(_episode(i))
    assert learner.agent.target_entropy == pytest.approx(-6.0) and learner.agent.best_autonomous_success == 1.0
    learner.checkpoint({"note": "test"})
    learner.close()
    restarted = _learner(tmp_path / "run", agent_cfg=cfg, resume=True)  # rebuilt from the refilled episode log
    assert restarted.agent.target_entropy == pytest.approx(-6.0)
    restarted.close()
    follows = _learner(tmp_path / "follows", agent_cfg=dataclasses.replace(cfg, target_entropy_ratchet=False))
    for i in range(30):
        follows.add_episode(_episode(i, success=i < 10))
    assert follows.agent.target_entropy == pytest.approx(-ACTION_DIM / 2.0)  # without it: back to the start
    follows.close()


def test_the_success_pose_labels_reach_the_learners_batches_from_successful_episodes_only(tmp_path):
    """`success_pose_weight`: the core (what `robot-rl train` and the learner node share) builds replays that label a
    successful episode's rows with the success pose's offset, and the agent's head trains on them."""
    cfg = AgentConfig(hidden_dims=(16, 16), batch_size=64, utd_ratio=2, n_step=1, success_pose_weight=1.0)
    learner = _learner(tmp_path / "run", agent_cfg=cfg)
    won, lost = _episode(0, success=True), _episode(1)
    learner.add_episode(won)
    learner.add_episode(lost)
    batch = learner.online.sample(256)
    from_won = torch.isin(batch.obs[keys.STATE][:, 0], torch.as_tensor(won[keys.STATE][:, 0]))
    assert from_won.any() and (~from_won).any() and torch.equal(batch.has_success, from_won)
    final = torch.as_tensor(won[keys.STATE][-1, :3])
    assert torch.allclose(batch.success_offset[from_won], final - batch.obs[keys.STATE][from_won, :3])
    learner.update(4)
    assert learner.metrics["success_pose_loss"] > 0
    learner.close()
