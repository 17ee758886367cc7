"""`robot-rl failures RUN`: a sim run's failed training episodes replayed exactly from their reset seeds and stored
actions, each reported with the sim's truth at its end and a kind (far, pushed, near)."""

from __future__ import annotations

import json

import pytest
from tiny_train import TINY_LEARNER_ARGS

from robot_rl.cli import main
from robot_rl.training.failures import classify


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A few seconds of peg_insert from state: 12-step episodes of warm-up and an untrained policy, all failures."""
    run = tmp_path_factory.mktemp("failures") / "run"
    args = ["train", "--task", "peg_insert", "--obs", "state", "--max-episode-steps", "12", "--steps", "60"]
    args += ["--warmup-steps", "30", "--scripted-demos", "0", "--seed", "5", *TINY_LEARNER_ARGS, "--out", str(run)]
    assert main(args) == 0
    return run


def _episodes(run):
    return [json.loads(line) for line in (run / "train_episodes.jsonl").read_text().splitlines()]


def test_every_failed_episode_replays_exactly_and_is_reported(failed_run, capsys):
    failed = [r for r in _episodes(failed_run) if not r["success"]]
    assert len(failed) == 5
    capsys.readouterr()
    assert main(["failures", str(failed_run), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["index"] for r in records] == [r["index"] for r in failed]
    for record in records:
        assert record["seed"] == 5 + record["index"]  # the loop's reset seed of that episode
        assert record["length"] == 12 and not record["success"]
        assert record["replay_strayed_mm"] == 0.0  # the same tool path as the stored proprioception
        assert record["kind"] == classify(record["goal_offset_mm"], record["grasp_slip_mm"])
    kinds = {k: sum(r["kind"] == k for r in records) for k in ("far", "pushed", "near")}
    assert lines[-1].startswith(f"5 failed training episodes from env step 0: far {kinds['far']}, ")
    assert lines[-1].endswith("60 steps, 0 driven by the operator")


def test_from_step_keeps_the_later_failures_and_lines_read_as_text(failed_run, capsys):
    late = [r for r in _episodes(failed_run) if r["env_steps"] >= 40]
    capsys.readouterr()
    assert main(["failures", str(failed_run), "--from-step", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(late) + 1 and lines[-1].startswith(
        f"{len(late)} failed training episodes from env step 40"
    )
    for line, r in zip(lines, late):
        assert line.startswith(f"episode {r['index']} (seed {5 + r['index']}, ended at env step {r['env_steps']}): ")
        assert "mm into the hand" in line and "replay differs" not in line


def test_a_failure_is_far_pushed_or_near_by_where_it_ended():
    assert classify([12.0, 0.0, 30.0], 0.0) == "far"
    assert classify([6.0, 8.0, 30.0], 9.0) == "far"  # 10 mm off the axis: elsewhere, whatever the grasp
    assert classify([1.5, -1.0, 20.0], 6.0) == "pushed"
    assert classify([1.5, -1.0, 20.0], 4.9) == "near"
    assert classify([1.5, -1.0, -15.0], None) == "near"  # a task with nothing in the hand


def test_runs_it_cannot_replay_are_refused_with_a_reason(failed_run, tmp_path, capsys):
    ros_run = tmp_path / "ros_run"
    ros_run.mkdir()
    (ros_run / "train_config.json").write_text((failed_run / "train_config.json").read_text())
    rows = [{**r, "actor_id": "sim_robot"} for r in _episodes(failed_run)]
    (ros_run / "train_episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["failures", str(ros_run)]) == 1
    assert "only episodes of the in-process loop" in capsys.readouterr().err
    gym_run = tmp_path / "gym_run"
    gym_run.mkdir()
    config = json.loads((failed_run / "train_config.json").read_text())
    (gym_run / "train_config.json").write_text(json.dumps({**config, "task": None, "env_id": "Pendulum-v1"}))
    assert main(["failures", str(gym_run)]) == 1
    assert "only sim task runs can be replayed" in capsys.readouterr().err
    assert main(["failures", str(tmp_path / "missing")]) == 2
    assert main(["failures", str(failed_run), "--from-step", "-1"]) == 2
