"""The acting package's episode bookkeeping without ROS (robot_rl.acting: config, observation, episode, delivery;
robot_rl.cell's layout): layout vs the gym env, observation assembly, staleness, the episode machine, resends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.acting.delivery import Outbox, VersionLedger
from robot_rl.acting.episode import EpisodeMachine, Phase
from robot_rl.acting.observation import (
    INPUT_GRIPPER,
    INPUT_JOINTS,
    INPUT_OBJECT,
    INPUT_POSE,
    INPUT_SUCCESS,
    INPUT_TWIST,
    ObservationAssembler,
    StaleInput,
    image_input,
)
from robot_rl.cell import ActorLayout, task_spec
from robot_rl.data.memory import MemoryEpisodeStore
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.spaces import as_dict_space, obs_spec
from robot_rl_sim.env import make_task_env


def _layout(
    task: str = "pick_cube", obs_mode: str = "state", cameras=("front", "wrist"), image_size: int = 128
) -> ActorLayout:
    return ActorLayout(task_spec(task), obs_mode, cameras, image_size, control_rate_hz=10.0, max_episode_steps=100)


def _feed(assembler: ObservationAssembler, env, t_s: float) -> None:
    """Hand the assembler what the sim node would publish for the env's current state, stamped t_s."""
    s = env.robot.read()
    assembler.put(INPUT_JOINTS, s.q_rad, t_s)
    assembler.put(INPUT_POSE, (s.ee_pos_m, s.ee_quat_wxyz), t_s)
    assembler.put(INPUT_TWIST, s.ee_linvel_m_s, t_s)
    assembler.put(INPUT_GRIPPER, s.gripper_width_m, t_s)
    assembler.put(INPUT_SUCCESS, env.task.is_success(), t_s)
    if INPUT_OBJECT in assembler.required:
        assembler.put(INPUT_OBJECT, env.task.object_state(), t_s)


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_the_static_task_table_reproduces_the_sim_envs_layout_and_action_scale(task, obs_mode):
    env = make_task_env(task, obs_mode=obs_mode, image_size=64).unwrapped
    want, got = env.task_meta(), _layout(task, obs_mode, image_size=64).task_meta()
    for field in (
        "task",
        "obs_mode",
        "control_rate_hz",
        "max_episode_steps",
        "action_layout",
        "action_scale",
        "obs_layout",
        "workspace",
        "image_size",
        "reward_type",
    ):
        assert got[field] == want[field], field
    assert {c: {k: v for k, v in d.items() if k != "K"} for c, d in want["cameras"].items()} == got["cameras"]
    assert _layout(task, obs_mode, image_size=64).obs_spec() == obs_spec(as_dict_space(env.observation_space))
    env.close()


def test_assembled_observations_equal_the_gym_envs_bit_for_bit_in_both_modes():
    for obs_mode in ("state", "pixels"):
        env = make_task_env("pick_cube", obs_mode=obs_mode, image_size=32, cameras=("front",)).unwrapped
        assembler = ObservationAssembler(
            _layout(obs_mode=obs_mode, cameras=("front",), image_size=32), max_staleness_s=0.3
        )
        env.reset(seed=3)
        for step in range(4):
            want = env._observation()
            _feed(assembler, env, t_s=10.0 + step)
            if obs_mode == "pixels":
                assembler.put(image_input("front"), want[keys.image_key("front")], 10.0 + step - 0.05)
            obs, info = assembler.assemble()
            want_state = want if obs_mode == "state" else want[keys.STATE]
            assert obs[keys.STATE].dtype == np.float32 and np.array_equal(obs[keys.STATE], want_state)
            assert info[keys.T_CAPTURE] == 10.0 + step
            if obs_mode == "pixels":
                assert np.array_equal(obs[keys.image_key("front")], want[keys.image_key("front")])
                assert info[keys.t_capture_key("front")] == pytest.approx(9.95 + step)
            env.step(np.array([0.5, -0.3, 0.2, 1.0], np.float32))
        env.close()


def test_actions_map_to_the_same_tool_deltas_as_the_gym_env_and_back():
    layout = _layout()
    cmd = layout.command_from_action(np.array([1.0, -0.5, 2.0, -1.0]))  # 2.0 is clipped to 1 like the env does
    assert np.allclose(cmd.delta_pos_m, [0.025, -0.0125, 0.025]) and cmd.gripper == 0.0
    assert np.allclose(layout.action_from_command(cmd), [1.0, -0.5, 1.0, -1.0])
    nan_cmd = layout.command_from_action(np.array([np.nan, 0.0, 0.0, 0.0]))
    assert math.isnan(nan_cmd.delta_pos_m[0])  # left for the safety filter to reject, never silently zeroed
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        layout.command_from_action(np.zeros(7))


def test_the_freshest_sample_wins_and_stale_or_missing_inputs_are_named_with_their_age():
    assembler = ObservationAssembler(_layout(obs_mode="pixels", cameras=("front",), image_size=8), max_staleness_s=0.3)
    assert [s.name for s in assembler.stale(1.0)] == list(assembler.required)
    assert all(math.isinf(s.age_s) for s in assembler.stale(1.0))
    q_new, q_old = np.full(7, 0.2), np.full(7, 0.1)
    assembler.put(INPUT_JOINTS, q_new, 5.0)
    assembler.put(INPUT_JOINTS, q_old, 4.9)  # arrived late, older: ignored
    for name, value in (
        (INPUT_POSE, (np.zeros(3), np.array([1.0, 0, 0, 0]))),
        (INPUT_TWIST, np.zeros(3)),
        (INPUT_GRIPPER, 0.08),
        (INPUT_SUCCESS, False),
    ):
        assembler.put(name, value, 5.0)
    assembler.put(image_input("front"), np.zeros((8, 8, 3), np.uint8), 4.6)
    stale = assembler.stale(5.05)
    assert stale == [StaleInput("front/image_raw", pytest.approx(0.45))]
    assert stale[0].describe() == "front/image_raw is 0.450 s old"
    obs, _ = assembler.assemble()
    assert np.allclose(obs[keys.STATE][-7:], 0.2)
    assert not assembler.fresh_since(4.8) and assembler.waiting_for(4.8) == ["front/image_raw"]
    assembler.put(image_input("front"), np.zeros((8, 8, 3), np.uint8), 5.0)
    assert assembler.fresh_since(4.8) and assembler.stale(5.05) == []
    with pytest.raises(ValueError, match=r"expects \(8, 8, 3\) uint8"):
        assembler.put(image_input("front"), np.zeros((16, 16, 3), np.uint8), 6.0)
    with pytest.raises(ValueError, match="non-finite"):
        assembler.put(INPUT_JOINTS, np.array([np.nan] * 7), 6.0)


def test_an_episode_pauses_once_on_stale_data_resumes_and_ends_on_success_or_the_time_limit():
    m = EpisodeMachine(max_episode_steps=3, reset_timeout_s=5.0)
    m.request_reset(now_s=0.0)
    assert not m.reset_timed_out(4.0) and m.reset_timed_out(5.5) and m.phase is Phase.WAITING
    m.request_reset(now_s=6.0)
    m.reset_answered(True, now_s=100.0)
    assert m.phase is Phase.SETTLING and m.t_reset_s == 100.0
    m.start()
    assert m.record_step(success=False).done is False
    stale = [StaleInput("front/image_raw", 0.6)]
    line = m.check_inputs(stale, now_s=101.0)
    assert m.phase is Phase.PAUSED and "front/image_raw is 0.600 s old" in line and "step 1" in line
    assert m.check_inputs(stale, now_s=101.1) == ""  # one line per pause, not one per tick
    assert "resuming episode at step 1 after 0.50 s" in m.check_inputs([], now_s=101.5)
    second, third = m.record_step(False), m.record_step(False)
    assert not second.done and third.truncated and m.n_steps == 3  # the third step reached the limit
    m.finish()
    m.request_reset(7.0)
    m.reset_answered(True, 200.0)
    m.start()
    end = m.record_step(success=True)
    assert (end.reward, end.terminated, end.truncated) == (1.0, True, False)
    with pytest.raises(RuntimeError, match="needs phase settling"):
        m.start()


def test_a_persons_verdict_ends_the_episode_success_with_reward_one_failure_with_zero_both_terminated():
    m = EpisodeMachine(max_episode_steps=50)
    for verdict, reward in (("success", 1.0), ("failure", 0.0)):
        m.request_reset(0.0)
        m.reset_answered(True, 1.0)
        m.start()
        assert not m.record_step(False).done
        end = m.record_step(success=False, verdict=verdict)  # the sim's flag is down: the person's word counts
        assert (end.reward, end.terminated, end.truncated) == (reward, True, False)
        m.finish()
    m.request_reset(0.0)
    m.reset_answered(True, 1.0)
    m.start()
    with pytest.raises(ValueError, match="'rerecord' does not end a stored step"):
        m.record_step(False, verdict="rerecord")


def test_truncation_comes_exactly_at_max_episode_steps():
    m = EpisodeMachine(max_episode_steps=3)
    m.request_reset(0.0)
    m.reset_answered(True, 1.0)
    m.start()
    outcomes = [m.record_step(False) for _ in range(3)]
    assert [o.truncated for o in outcomes] == [False, False, True] and not any(o.terminated for o in outcomes)


def test_unacknowledged_episodes_are_resent_lowest_first_at_the_resend_interval_until_acked(tmp_path):
    box = Outbox("/robot_1/actor", timeout_s=3.0, resend_interval_s=2.0, max_burst=2)
    assert box.due(n_stored=3, now_s=0.0) == []  # no learner heard yet: nobody to resend to
    box.on_acks({"/robot_2/actor": 7}, now_s=1.0)  # a learner that holds nothing of ours
    assert box.acked == 0 and box.learner_alive(1.0)
    assert box.due(3, now_s=1.0) == [0, 1]  # burst limit
    for i in (0, 1):
        box.sent(i, 1.0)
    assert box.due(3, now_s=2.0) == []  # checked less than resend_interval_s ago
    box.sent(0, 2.5)  # e.g. published again just now
    assert box.due(3, now_s=3.1) == [1, 2]  # 0 went out 0.6 s ago; 1 is 2.1 s old; 2 never went
    box.on_acks({"/robot_1/actor": 3}, now_s=3.5)
    assert box.due(3, now_s=6.0) == [] and box.unacked(3) == 0
    assert not box.learner_alive(7.0) and box.silent_for(7.0) == pytest.approx(3.5)
    ledger = VersionLedger(tmp_path)
    ledger.add(0, 12)
    ledger.add(1, -1)
    (tmp_path / VersionLedger.FILE).open("a").write('{"index": 2, "polic')  # torn by a crash
    reread = VersionLedger(tmp_path)
    assert (reread.version(0), reread.version(1), reread.version(2)) == (12, -1, -1)


def test_a_learner_that_is_alive_but_behind_gets_resends_ever_more_rarely_and_all_at_once_after_a_silence():
    box = Outbox("/robot_1/actor", timeout_s=3.0, resend_interval_s=2.0, max_burst=10, max_resend_interval_s=5.0)
    sends = []
    for tick in range(0, 25):  # the learner acks every second but stores nothing of ours (its ingest is slow)
        now = float(tick)
        box.on_acks({"/robot_1/actor": 0}, now)
        if box.due(1, now):
            box.sent(0, now)
            sends.append(tick)
    assert sends == [0, 2, 6, 12, 18, 24]  # 2, 4, then 5 s (the cap) after each send, on the 2 s check grid
    box.on_acks({"/robot_1/actor": 0}, 30.0)  # back after 6 s of silence (a partition, a restart)
    assert box.due(1, 30.0) == [0]
    with pytest.raises(ValueError, match="max_resend_interval_s"):
        Outbox("/a", timeout_s=3.0, resend_interval_s=2.0, max_resend_interval_s=1.0)


def test_a_policy_for_another_layout_is_named_as_a_mismatch():
    layout = _layout(obs_mode="pixels", cameras=("front",), image_size=32)
    assert layout.policy_mismatch({"state": [18], "image_front": [32, 32, 3]}, 4) == ""
    why = layout.policy_mismatch({"state": [28]}, 7)
    assert "observation spec {'state': [28]}" in why and "action dim 7 != 4" in why


def test_actor_episodes_have_the_key_set_dtypes_and_shapes_of_gym_recorded_demos():
    env = make_task_env("pick_cube", obs_mode="pixels", image_size=16, cameras=("front",))
    demo, actor = MemoryEpisodeStore(), MemoryEpisodeStore()
    rec = EpisodeRecorder(demo)
    obs, info = env.reset(seed=0)
    rec.start(obs, info)
    for _ in range(2):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        rec.step(env.action_space.sample(), obs, r, term, trunc, info)
    rec.end()
    assembler = ObservationAssembler(_layout(obs_mode="pixels", cameras=("front",), image_size=16), max_staleness_s=0.3)
    _feed(assembler, env.unwrapped, 1.0)
    assembler.put(image_input("front"), np.zeros((16, 16, 3), np.uint8), 1.0)
    rec = EpisodeRecorder(actor)
    rec.start(*assembler.assemble())
    o, i = assembler.assemble()
    rec.step(
        np.zeros(4, np.float32), o, 0.0, False, True, i, base_action=np.zeros(4, np.float32), is_intervention=False
    )
    rec.end()
    assert actor.spec == demo.spec
    env.close()


def test_bad_parameters_are_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"warmup='maybe'; choose one of \['hold', 'random', 'teleop'\]"):
        ActorConfig(warmup="maybe").validate()
    with pytest.raises(ValueError, match="unknown task 'stack'"):
        ActorConfig(task="stack").layout()
    assert ActorConfig(max_episode_steps=0).layout().max_episode_steps == 100


def test_episodes_start_only_with_something_to_act_with_and_a_learner_unless_told_to_continue_without_one():
    hold_for_learner = ActorConfig(warmup="hold", on_learner_lost="hold")
    assert not hold_for_learner.may_start_episode(has_policy=False, learner_alive=True)  # nothing to act with
    assert not hold_for_learner.may_start_episode(has_policy=True, learner_alive=False)  # learner gone: hold
    assert hold_for_learner.may_start_episode(has_policy=True, learner_alive=True)
    random_alone = ActorConfig(warmup="random", on_learner_lost="continue")
    assert random_alone.may_start_episode(has_policy=False, learner_alive=False)


def test_a_six_joint_arm_reads_its_joints_by_name_and_the_state_shrinks_by_one():
    from sensor_msgs.msg import JointState

    from robot_rl.nodes.actor_inputs import joints

    ur = tuple(f"joint{i}" for i in range(1, 7))
    cfg = ActorConfig(obs_mode="pixels", joint_names=ur)
    layout = cfg.layout()
    assert layout.obs_spec()[keys.STATE] == [17] and dict(layout.state_layout)["joint_q"] == 6
    assert layout.task_meta()["obs_layout"][keys.STATE][-1] == ["joint_q", 6]
    msg = JointState(
        name=["joint6", "joint2", "joint1", "joint3", "joint5", "joint4", "finger"],
        position=[6.0, 2.0, 1.0, 3.0, 5.0, 4.0, 0.04],
    )
    q, _ = joints(msg, ur)
    assert q.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # by name, in the configured order; extra joints ignored
    with pytest.raises(ValueError, match=r"joint_states needs positions of \['joint1'.*'joint7'\]"):
        joints(msg)  # the default (7-joint) layout refuses a 6-joint arm, naming what it needs
    assembler = ObservationAssembler(layout, max_staleness_s=0.3)
    assembler.put(INPUT_JOINTS, q, 1.0)
    with pytest.raises(ValueError, match=r"\(6,\)"):
        assembler.put(INPUT_JOINTS, np.zeros(7), 1.1)
    with pytest.raises(ValueError, match="joint_names must be distinct"):
        ActorConfig(joint_names=("a", "a")).layout()


def test_a_calibrated_workspace_file_sets_the_safety_box_of_actor_and_arm_node_and_a_bad_one_is_refused(tmp_path):
    from robot_rl.interfaces import WorkspaceBox
    from robot_rl_calibration.io import save_workspace
    from robot_rl_drivers.arm_node import ArmNodeConfig, workspace_box

    box = WorkspaceBox((0.35, -0.2, 0.02), (0.65, 0.2, 0.3))
    path = save_workspace(tmp_path / "workspace.yaml", box, margin_m=0.01)
    assert ActorConfig(workspace_file=str(path)).safety_box() == box
    assert ActorConfig().safety_box() == task_spec("pick_cube").workspace  # no file: the task's box
    assert workspace_box(ArmNodeConfig(workspace_file=str(path))) == box
    (tmp_path / "old.yaml").write_text(
        path.read_text().replace("robot_rl_calibration_version: 1", "robot_rl_calibration_version: 99")
    )
    with pytest.raises(ValueError, match="version"):
        ActorConfig(workspace_file=str(tmp_path / "old.yaml")).safety_box()


def test_with_success_from_teleop_task_success_is_no_input_and_only_a_persons_verdict_ends_an_episode_early():
    layout = ActorConfig(success_from="teleop").layout()
    assembler = ObservationAssembler(layout, max_staleness_s=0.3)
    assert INPUT_SUCCESS not in assembler.required
    for name, value in (
        (INPUT_JOINTS, np.zeros(7)),
        (INPUT_POSE, (np.zeros(3), np.array([1.0, 0, 0, 0]))),
        (INPUT_TWIST, np.zeros(3)),
        (INPUT_GRIPPER, 0.08),
        (INPUT_OBJECT, np.zeros(layout.object_dim)),
    ):
        assembler.put(name, value, 1.0)
    assert assembler.stale(1.1) == []  # nothing waits for task/success
    _, info = assembler.assemble()
    assert info["success"] is False
    with pytest.raises(ValueError, match="success_from='maybe'; choose one of"):
        ActorConfig(success_from="maybe").layout()
