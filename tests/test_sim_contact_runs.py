"""A run records the sim contact profile it trained on (`--sim-contact`, or ROBOT_RL_SIM_CONTACT), and evaluation,
`robot-rl failures` and `--resume` use that physics again."""

from __future__ import annotations

import json
import os

import pytest
from tiny_train import TINY_LEARNER_ARGS

from robot_rl.cli import main
from robot_rl.data.store import EpisodeStore
from robot_rl.training.env_factory import SIM_CONTACT_VAR, SIM_CONTACTS, use_sim_contact
from robot_rl.training.failures import replay
from robot_rl_sim.contact import PROFILES
from robot_rl_sim.env import make_task_env


def test_the_profile_comes_from_the_option_or_the_variable_and_they_must_agree(monkeypatch):
    assert sorted(SIM_CONTACTS) == sorted(PROFILES)  # the core's names are the sim's
    monkeypatch.delenv(SIM_CONTACT_VAR, raising=False)
    assert use_sim_contact("auto") == "stiff" and os.environ[SIM_CONTACT_VAR] == "stiff"
    monkeypatch.setenv(SIM_CONTACT_VAR, "bounded")
    assert use_sim_contact("auto") == "bounded" and use_sim_contact("bounded") == "bounded"
    with pytest.raises(ValueError, match=f"{SIM_CONTACT_VAR}=bounded but the run's sim contact is 'stiff'"):
        use_sim_contact("stiff")
    monkeypatch.setenv(SIM_CONTACT_VAR, "soft")
    with pytest.raises(ValueError, match=rf"{SIM_CONTACT_VAR}='soft': choose one of \['stiff', 'bounded'\]"):
        use_sim_contact("auto")


def test_a_bounded_run_is_replayed_evaluated_and_resumed_on_its_own_physics(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(SIM_CONTACT_VAR, raising=False)
    run = tmp_path / "run"
    args = ["train", "--task", "peg_insert", "--obs", "state", "--max-episode-steps", "12", "--steps", "36"]
    args += ["--warmup-steps", "24", "--scripted-demos", "0", "--seed", "2", *TINY_LEARNER_ARGS]
    assert main([*args, "--sim-contact", "bounded", "--out", str(run)]) == 0
    assert json.loads((run / "train_config.json").read_text())["sim_contact"] == "bounded"
    assert EpisodeStore.open(run / "episodes").meta["contact"] == "bounded"

    monkeypatch.delenv(SIM_CONTACT_VAR)  # a later shell: the run's record decides
    capsys.readouterr()
    assert main(["failures", str(run), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    assert len(records) == 3 and all(r["replay_strayed_mm"] == 0.0 for r in records)
    assert os.environ[SIM_CONTACT_VAR] == "bounded"
    # the same actions under the other physics are another episode: the check above can fail
    episode = EpisodeStore.open(run / "episodes").get_episode(records[0]["index"])
    stiff = replay(make_task_env("peg_insert", obs_mode="state", contact="stiff"), records[0]["seed"],
                   episode["action"], episode["state"][1:, :3])  # fmt: skip
    assert stiff["replay_strayed_mm"] > 0.1

    monkeypatch.delenv(SIM_CONTACT_VAR)
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert os.environ[SIM_CONTACT_VAR] == "bounded"
    assert main(["train", "--resume", str(run), "--steps", "48"]) == 0
    assert EpisodeStore.open(run / "episodes").n_episodes == 4
    monkeypatch.setenv(SIM_CONTACT_VAR, "stiff")
    assert main(["train", "--resume", str(run), "--steps", "60"]) == 1
    assert "ROBOT_RL_SIM_CONTACT=stiff but the run's sim contact is 'bounded'" in capsys.readouterr().err
