"""The sim's contact profiles (robot_rl_sim.contact): `stiff` pushes a blocked tool with up to ~300 N and lets a peg
landing on the fixture be pushed into the hand; `bounded` bounds the push, holds the peg, and still moves a full step."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_rl_sim.contact import ENV_VAR, PROFILES, contact_profile
from robot_rl_sim.controller import ImpedanceConfig
from robot_rl_sim.env import make_task_env
from robot_rl_sim.experts import make_expert


def _land_on_fixture(env, offset_x_m: float, down_steps: int = 30) -> tuple[dict, float]:
    """Bring the peg 14 cm above the hole's centre + `offset_x_m`, then drive down at full speed; the last info and
    the fixture's normal force on the peg at the end (N)."""
    task = env.unwrapped.task
    goal = task.data.mocap_pos[task._hole_mocap] + np.array([offset_x_m, 0.0, 0.14])
    info: dict = {}
    for k in range(30 + down_steps):
        tool = task.robot.controller.tool_pose()[0]
        to_goal = np.clip((goal - tool) / 0.025, -1, 1)
        action = np.r_[to_goal, 1.0] if k < 30 else np.r_[to_goal[:2], -1.0, 1.0]
        *_, terminated, _, info = env.step(action.astype(np.float32))
        if terminated:
            break
    m, d = task.model, task.data
    fingers = {m.body("left_finger").id, m.body("right_finger").id}
    force = 0.0
    for i in range(d.ncon):
        c, f = d.contact[i], np.zeros(6)
        bodies = {m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]}
        if task._peg_body in bodies and not bodies & fingers:
            mujoco.mj_contactForce(m, d, i, f)
            force += abs(f[0])
    return info, force


def test_a_bounded_push_holds_the_peg_where_the_stiff_one_pushes_it_into_the_hand():
    pushed = {}
    for name in ("stiff", "bounded"):
        env = make_task_env("peg_insert", obs_mode="state", contact=name)
        env.reset(seed=3)
        info, force = _land_on_fixture(env, 0.023)  # the tip lands on the fixture's wall, 23 mm off the axis
        assert not info["success"]
        pushed[name] = (info["grasp_slip_m"], force)
        env.reset(seed=3)
        assert _land_on_fixture(env, 0.0)[0]["success"]  # aligned, it goes in with either
    (stiff_slip, stiff_force), (bounded_slip, bounded_force) = pushed["stiff"], pushed["bounded"]
    assert stiff_slip > 0.010 and stiff_force > 150.0, pushed
    assert bounded_slip < 0.004 and bounded_force < 70.0, pushed


def test_the_bounded_profile_still_moves_a_full_step_and_its_experts_succeed():
    env = make_task_env("peg_insert", obs_mode="state", contact="bounded")
    env.reset(seed=3)
    tool = env.unwrapped.task.robot.controller.tool_pose
    x0, full_step_m = tool()[0][0], env.unwrapped.robot.spec.max_step_m
    for k in range(1, 4):
        env.step(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
        assert tool()[0][0] - x0 == pytest.approx(full_step_m * k, abs=0.003)  # tracked within a period, no lag
    for task in ("peg_insert", "pick_cube"):
        env = make_task_env(task, obs_mode="state", contact="bounded")
        expert = make_expert(env, seed=0)
        successes = []
        for episode in range(20):
            obs, info = env.reset(seed=10_000 + episode)
            expert.reset()
            terminated = truncated = False
            while not (terminated or truncated):
                obs, _, terminated, truncated, info = env.step(expert.act(obs))
            successes.append(info["success"])
        assert np.mean(successes) >= 0.95, (task, successes)


def test_the_profile_comes_from_the_env_or_the_variable_and_is_recorded(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert contact_profile() == ("stiff", PROFILES["stiff"])
    assert not PROFILES["stiff"].impedance.bounded  # the law every earlier figure was measured with
    monkeypatch.setenv(ENV_VAR, "bounded")
    env = make_task_env("pick_cube", obs_mode="state")
    assert env.unwrapped.contact == "bounded" and env.unwrapped.task_meta()["contact"] == "bounded"
    assert env.unwrapped.model.opt.noslip_iterations == PROFILES["bounded"].noslip_iterations
    assert make_task_env("pick_cube", obs_mode="state", contact="stiff").unwrapped.task_meta()["contact"] == "stiff"
    monkeypatch.setenv(ENV_VAR, "soft")
    with pytest.raises(ValueError, match=rf"{ENV_VAR}='soft': choose one of \['bounded', 'stiff'\]"):
        make_task_env("pick_cube", obs_mode="state")
    with pytest.raises(ValueError, match="contact='x'"):
        contact_profile("x")
    with pytest.raises(ValueError, match="max_error_m must be > 0"):
        ImpedanceConfig(max_error_m=0.0)
