"""The scripted operator in process with the MuJoCo env: it takes over when the policy strays, within its budget."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.teleop import Arbiter, ArbiterConfig, OperatorConfig, ScriptedOperator, distance_to_done_m
from robot_rl_sim.env import make_task_env
from robot_rl_sim.experts import make_expert

IDLE = np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)  # a policy that does nothing (gripper open)
UPWARDS = np.array([0.0, 0.0, 1.0, -1.0], dtype=np.float32)  # a policy that heads away from the cube


def _run_episode(policy_action: np.ndarray, cfg: OperatorConfig, seed: int = 0) -> dict:
    """One pick_cube episode: policy -> operator (ground truth + scripted expert) -> arbiter -> env."""
    env = make_task_env("pick_cube", obs_mode="state", max_episode_steps=cfg.max_episode_steps)
    expert, op, arb = (
        make_expert(env, seed=seed),
        ScriptedOperator(cfg, use_rotation=False),
        Arbiter(ArbiterConfig(), 4),
    )
    obs, _ = env.reset(seed=seed)
    expert.reset()
    interventions, distances, events, success = [], [], [], False
    for _ in range(cfg.max_episode_steps):
        distance = distance_to_done_m("pick_cube", obs[18:])
        cmd = op.step(distance, expert.act(obs))
        out = arb.step(policy_action, cmd)
        obs, _, terminated, truncated, info = env.step(out.action)
        interventions.append(out.is_intervention)
        distances.append(distance)
        events += cmd.events
        success |= info["success"]
        if terminated or truncated:
            break
    env.close()
    return {
        "interventions": np.array(interventions),
        "distances": np.array(distances),
        "events": events,
        "success": success,
        "operator": op,
    }


def test_the_operator_takes_over_an_idle_policy_after_its_patience_and_stays_within_budget():
    cfg = OperatorConfig(
        patience_steps=8, takeover_steps=7, max_interventions=5, max_fraction=0.2, max_episode_steps=60
    )
    ep = _run_episode(IDLE, cfg)
    iv, d = ep["interventions"], ep["distances"]
    first = int(np.argmax(iv))
    assert first == 8  # 8 steps without progress: the 9th step is the operator's
    assert iv[8:15].all() and not iv[15:23].any()  # drives 7 steps, gives back, watches 8 steps again
    assert d[15] < d[8] - 0.15, "7 steps of the expert should bring the tool > 15 cm closer"
    # the fraction budget (0.2 * 60 = 12 steps) cuts the second take-over after 5 steps, and no third comes
    assert iv.sum() == ep["operator"].steps_driven == 12 and ep["operator"].interventions == 2
    assert iv[23:28].all() and not iv[28:].any()
    assert ep["events"].count("take_over") == 2 and ep["events"].count("release") == 2


def test_the_intervention_count_caps_the_take_overs():
    cfg = OperatorConfig(
        patience_steps=5, takeover_steps=3, max_interventions=2, max_fraction=1.0, max_episode_steps=60
    )
    ep = _run_episode(IDLE, cfg)
    assert ep["operator"].interventions == 2 and ep["interventions"].sum() == 6


def test_a_policy_heading_away_is_taken_over_before_the_patience_runs_out():
    cfg = OperatorConfig(patience_steps=20, away_m=0.05, takeover_steps=5, max_episode_steps=40)
    iv = _run_episode(UPWARDS, cfg)["interventions"]
    assert 1 <= int(np.argmax(iv)) <= 4  # 2.5 cm a step upwards: > 5 cm away from the best within 3 steps


def test_no_budget_means_the_operator_never_acts():
    ep = _run_episode(IDLE, OperatorConfig(patience_steps=3, max_fraction=0.0, max_episode_steps=40))
    assert ep["interventions"].sum() == 0 and ep["events"] == []


@pytest.mark.parametrize("seed", [0, 1])
def test_with_an_unlimited_budget_the_operator_finishes_the_task_for_an_idle_policy(seed):
    cfg = OperatorConfig(
        patience_steps=5, takeover_steps=200, max_interventions=1, max_fraction=1.0, max_episode_steps=100
    )
    ep = _run_episode(IDLE, cfg, seed=seed)
    assert ep["success"], f"the expert drove {ep['interventions'].sum()} steps without lifting the cube"


def test_the_ground_truth_state_expert_of_the_operator_node_lifts_the_cube_from_the_object_state_alone():
    from robot_rl.teleop.state_experts import make_state_expert

    env = make_task_env("pick_cube", obs_mode="state")
    expert, wins = make_state_expert("pick_cube"), 0
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        expert.reset()
        for _ in range(60):
            obs, _, terminated, truncated, info = env.step(expert.act(obs[18:]))  # obs[18:]: task/object_state
            if terminated or truncated:
                break
        wins += info["success"]
    env.close()
    assert wins == 5
    with pytest.raises(ValueError, match=r"there is one for \['peg_insert', 'pick_cube'\]"):
        make_state_expert("stack_cubes")


@pytest.mark.parametrize("use_rotation", [False, True])
def test_the_ground_truth_state_expert_of_the_operator_node_inserts_the_peg_from_the_object_state_alone(use_rotation):
    from robot_rl.teleop.state_experts import make_state_expert

    env = make_task_env("peg_insert", obs_mode="state", use_rotation=use_rotation, randomize_yaw=use_rotation)
    expert, wins = make_state_expert("peg_insert", use_rotation), 0
    for seed in range(5):
        env.reset(seed=seed)
        expert.reset()
        for _ in range(40):
            state = env.unwrapped.task.object_state()  # what task/object_state carries
            _, _, terminated, truncated, info = env.step(expert.act(state))
            if terminated or truncated:
                break
        wins += info["success"]
    env.close()
    assert wins == 5


@pytest.mark.parametrize("seed", [0, 1])
def test_the_peg_distance_keeps_shrinking_while_the_peg_goes_into_the_hole(seed):
    """A peg going in is progress: the distance the operator watches falls to the end, never back up below the rim
    (measured to the rim it grew by the 25 mm of the insertion, and a slow insertion looked like a stalled one)."""
    env = make_task_env("peg_insert", obs_mode="state")
    expert, task = make_expert(env), env.unwrapped.task
    obs, _ = env.reset(seed=seed)
    expert.reset()
    below_rim = []  # distances once the tip is inside the hole
    for _ in range(60):
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        if task.insertion_depth_m() > 0.002:
            below_rim.append(distance_to_done_m("peg_insert", task.object_state()))
        if terminated or truncated:
            break
    env.close()
    assert info["success"] and len(below_rim) >= 2, (info, below_rim)
    assert all(b <= a + 1e-3 for a, b in zip(below_rim, below_rim[1:])), below_rim
    assert below_rim[-1] < 0.005, f"the distance at success is {below_rim[-1] * 1000:.1f} mm, not ~0"


@pytest.mark.parametrize("end_lost", [True, False])
def test_a_peg_pushed_into_the_hand_gets_a_failure_verdict_once_instead_of_take_overs(end_lost):
    """The expert's path 2.5 mm off to one side lands the peg on the hole's rim; pressing on, it slides into the
    hand. With end_lost the operator says `failure` (once) as soon as the slip reaches LOST_SLIP_M; without, never."""
    from robot_rl.teleop.operator import LOST_SLIP_M, GraspSlip, held_object_pos
    from robot_rl.training.intervention import SimOperator

    # at 25 mm per full action the expert's descent overshoots its hover band and presses on (at the task's 12.5 mm
    # it waits above the rim for an alignment that never comes)
    env = make_task_env("peg_insert", obs_mode="state", max_episode_steps=60, max_step_m=0.025)
    cfg = OperatorConfig(patience_steps=200, max_episode_steps=60, end_lost=end_lost)  # it never strays in time
    sim_op, expert = SimOperator(env, cfg), make_expert(env, seed=0)
    task = env.unwrapped.task
    obs, _ = env.reset(seed=0)
    sim_op.reset()
    expert.reset()
    node_slip = GraspSlip()  # the operator node's measure, from the ee_pose topic's tool pose and the object state

    def seen_by_node() -> float:
        return node_slip(*task.robot.controller.tool_pose(), held_object_pos("peg_insert", task.object_state()))

    assert seen_by_node() == 0.0
    verdicts, slips = [], []
    for _ in range(60):
        action = expert.act(obs).copy()
        action[0] += 0.1  # 2.5 mm per step off the expert's line
        obs, _, terminated, truncated, _ = env.step(np.clip(action, -1, 1))
        sim_op.observe(active=True)
        verdicts.append(sim_op.verdict)
        slips.append(task.grasp_slip_m())
        assert abs(seen_by_node() - slips[-1]) < 2e-4  # the node's measure is the sim's, within 0.2 mm
        assert not sim_op.command.engaged
        if terminated or truncated:
            break
    env.close()
    lost = [s >= LOST_SLIP_M for s in slips]
    assert any(lost), f"the peg was never pushed {LOST_SLIP_M * 1e3} mm into the hand (max {max(slips) * 1e3:.1f} mm)"
    first = lost.index(True)
    if end_lost:
        assert verdicts[first] == "failure" and verdicts.count("failure") == 1 and set(verdicts[:first]) == {None}
    else:
        assert set(verdicts) == {None}
