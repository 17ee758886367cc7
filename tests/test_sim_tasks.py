"""Ground-truth success of the tasks and the physics behind it (grasping, insertion, reach)."""

from __future__ import annotations

import itertools

import mujoco
import numpy as np

from robot_rl.interfaces import EECommand
from robot_rl_sim.env import make_task_env


def _free_joint_qpos(env, joint: str) -> int:
    return env.unwrapped.model.jnt_qposadr[env.unwrapped.model.joint(joint).id]


def test_cube_in_the_air_without_a_grasp_is_not_success_but_a_held_lifted_cube_is():
    env = make_task_env("pick_cube")
    env.reset(seed=0)
    u = env.unwrapped
    a = _free_joint_qpos(env, "cube")
    u.data.qpos[a + 2] = 0.2  # teleported up, nobody holding it
    mujoco.mj_forward(u.model, u.data)
    assert u.task.lift_m() > 0.1 and not u.task.is_grasped() and not u.task.is_success()

    env.reset(seed=0)
    cube = u.task.cube_pos()
    u.robot.move_to(cube + [0, 0, 0.06], duration_s=1.5)
    u.robot.move_to(cube - [0, 0, 0.002], duration_s=1.0)
    u.robot.set_gripper(1.0)
    u.robot.advance(0.4)
    assert u.task.is_grasped() and u.robot.read().gripper_width_m > 0.035  # fingers stopped by the 4 cm cube
    u.robot.move_to(cube + [0, 0, 0.1], duration_s=1.5)
    assert u.task.lift_m() > 0.08 and u.task.is_success()


def test_peg_starts_held_and_stays_in_the_gripper_while_moving():
    env = make_task_env("peg_insert")
    env.reset(seed=2)
    u = env.unwrapped
    offset0 = u.task.tip_pos() - u.robot.read().ee_pos_m
    assert abs(u.robot.read().gripper_width_m - 0.02) < 0.002  # closed on the 2 cm peg
    for delta in ([0.025, 0, 0], [0, -0.025, 0], [0, 0, 0.025], [-0.025, 0.025, -0.025]):
        for _ in range(3):
            env.step(np.array([*(np.array(delta) / 0.025), 1.0], np.float32))
    offset1 = u.task.tip_pos() - u.robot.read().ee_pos_m
    assert np.linalg.norm(offset1 - offset0) < 0.005, (offset0, offset1)


def test_peg_counts_as_inserted_only_inside_the_hole_footprint():
    env = make_task_env("peg_insert")
    env.reset(seed=0)
    u = env.unwrapped
    rim = u.task.rim_pos()
    u.robot.set_gripper(0.0)
    u.robot.advance(0.2)  # let go of it
    a = _free_joint_qpos(env, "peg")
    tip_below_rim_m = 0.03
    u.data.qpos[a : a + 3] = rim + [0.0, 0.0, 0.04 - tip_below_rim_m]  # centred in the hole, tip 3 cm deep
    u.data.qpos[a + 3 : a + 7] = (1, 0, 0, 0)
    mujoco.mj_forward(u.model, u.data)
    assert abs(u.task.insertion_depth_m() - tip_below_rim_m) < 1e-6 and u.task.is_success()
    u.data.qpos[a : a + 2] = rim[:2] + [0.06, 0.0]  # same depth, beside the fixture
    mujoco.mj_forward(u.model, u.data)
    assert u.task.insertion_depth_m() == 0.0 and not u.task.is_success()


def test_hole_is_too_narrow_for_a_peg_pushed_down_five_millimetres_off_centre():
    env = make_task_env("peg_insert")
    env.reset(seed=1)
    u = env.unwrapped
    rim = u.task.rim_pos()
    goal = u.robot.read().ee_pos_m + (rim + [0.005, 0.0, 0.01] - u.task.tip_pos())
    u.robot.move_to(goal, duration_s=1.5)
    for _ in range(10):
        u.robot.command(EECommand(delta_pos_m=np.array([0.0, 0.0, -0.01]), gripper=1.0))
        u.robot.advance(0.1)
    assert u.task.tip_pos()[2] > rim[2] - 0.005 and not u.task.is_success()  # the tip rests on the rim


def test_every_corner_of_the_task_workspace_is_reachable_with_the_tool_down():
    env = make_task_env("pick_cube")
    u = env.unwrapped
    box = u.robot.spec.workspace
    for corner in itertools.product(*zip(box.low_m, box.high_m)):
        env.reset(seed=0)
        u.robot.move_to(np.array(corner), duration_s=2.5)
        reached = u.robot.read().ee_pos_m
        assert np.abs(reached - corner).max() < 0.005, (corner, reached)
