"""The gymnasium envs over the MuJoCo cell: spaces, API, determinism, metadata, bad input."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import robot_rl  # noqa: F401  (registers the envs)
from robot_rl import keys
from robot_rl_sim.env import PROPRIO_DIM, make_task_env

ENV_IDS = ("robot_rl/PickCube-v0", "robot_rl/PegInsert-v0")


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_env_passes_gymnasium_env_checker(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded float Box warnings are expected
        check_env(env.unwrapped)
    env.close()


def test_pixel_observations_have_state_and_one_uint8_image_per_camera():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="pixels")
    obs, info = env.reset(seed=0)
    assert set(obs) == {keys.STATE, keys.image_key("front"), keys.image_key("wrist")}
    assert obs[keys.STATE].shape == (PROPRIO_DIM,) and obs[keys.STATE].dtype == np.float32
    for cam in ("front", "wrist"):
        image = obs[keys.image_key(cam)]
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert image.std() > 5.0, f"{cam} image is nearly blank"
    assert env.observation_space.contains(obs)
    env.close()


def test_state_observation_is_proprio_then_object_state():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="state")
    obs, _ = env.reset(seed=1)
    u = env.unwrapped
    assert obs.shape == (PROPRIO_DIM + 10,) and obs.dtype == np.float32
    s = u.robot.read()
    np.testing.assert_allclose(obs[:3], s.ee_pos_m, atol=1e-6)
    np.testing.assert_allclose(obs[10], s.gripper_width_m, atol=1e-6)
    np.testing.assert_allclose(obs[11:18], s.q_rad, atol=1e-6)
    np.testing.assert_allclose(obs[18:21], u.task.cube_pos(), atol=1e-6)
    assert 0.4 <= obs[18] <= 0.64 and abs(obs[19]) <= 0.16 and abs(obs[20] - 0.02) < 0.002  # cube on the table
    assert abs(float(np.linalg.norm(obs[3:7])) - 1.0) < 1e-5


def test_same_seed_gives_the_same_episode_and_different_seeds_differ():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="state")
    actions = np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype(np.float32)

    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        return np.stack([obs] + [env.step(a)[0] for a in actions])

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert np.abs(rollout(3)[0] - rollout(4)[0]).max() > 0.01


def test_one_step_is_one_control_period_and_moves_the_tool_by_the_action():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="state")
    obs, info = env.reset(seed=0)
    t0, p0 = info["t_capture"], obs[:3].copy()
    for _ in range(4):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0, 0.0, -1.0], np.float32))
    assert info["t_capture"] == pytest.approx(t0 + 0.4, abs=1e-9)
    assert reward == 0.0 and not terminated and not truncated and info["success"] is False
    moved = obs[:3] - p0
    assert 0.075 < moved[0] < 0.105, moved  # 4 x 2.5 cm commanded, the last step partly still under way
    assert np.all(np.abs(moved[1:]) < 0.005), moved


def test_episode_is_truncated_at_the_time_limit():
    env = make_task_env("pick_cube", max_episode_steps=7)
    env.reset(seed=0)
    results = [env.step(np.zeros(4, np.float32)) for _ in range(7)]
    assert [r[3] for r in results] == [False] * 6 + [True]
    assert env.unwrapped.task_meta()["max_episode_steps"] == 7


def test_rotation_actions_add_three_dimensions_and_turn_the_tool():
    env = gym.make("robot_rl/PegInsert-v0", use_rotation=True, randomize_yaw=True)
    assert env.action_space.shape == (7,)
    env.reset(seed=0)
    q0 = env.unwrapped.robot.read().ee_quat_wxyz
    for _ in range(3):
        env.step(np.array([0, 0, 0, 0, 0, 1.0, 1.0], np.float32))
    for _ in range(2):  # let the last step settle
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32))
    q1 = env.unwrapped.robot.read().ee_quat_wxyz
    angle = 2 * np.arccos(min(abs(float(np.dot(q0, q1))), 1.0))
    assert angle == pytest.approx(3 * 0.15, abs=0.03)


def test_render_gives_a_bigger_front_image_than_the_observations():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="pixels", render_mode="rgb_array", render_size=192)
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (192, 192, 3) and frame.dtype == np.uint8
    assert obs[keys.image_key("front")].shape == (128, 128, 3)
    env.close()


def test_task_meta_is_json_and_describes_cameras_actions_and_observations():
    env = gym.make("robot_rl/PickCube-v0", obs_mode="pixels", image_size=96)
    meta = json.loads(json.dumps(env.unwrapped.task_meta()))
    assert meta["task"] == "pick_cube" and meta["control_rate_hz"] == 10.0 and meta["image_size"] == 96
    assert meta["action_layout"] == ["dx", "dy", "dz", "gripper"]
    K = np.array(meta["cameras"]["front"]["K"]).reshape(3, 3)
    assert K[0, 2] == 48.0 and K[1, 2] == 48.0 and K[0, 0] > 50
    assert sum(n for _, n in meta["obs_layout"][keys.STATE]) == PROPRIO_DIM
    assert meta["obs_layout"][keys.image_key("wrist")] == [96, 96, 3]
    assert set(env.unwrapped.cameras) == {"front", "wrist"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"obs_mode": "rgb"}, "state"),
        ({"reward_type": "shaped"}, "sparse"),
        ({"cameras": ("top",)}, "wrist"),
        ({"control_rate_hz": 7.0}, "whole number"),
        ({"lift_heigth_m": 0.1}, "lift_heigth_m"),
    ],
)
def test_bad_env_arguments_name_the_valid_choices(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_task_env("pick_cube", **kwargs)


def test_unknown_task_lists_the_tasks():
    with pytest.raises(ValueError, match="peg_insert"):
        make_task_env("stack_cubes")


def test_wrong_shaped_or_nan_actions_are_rejected():
    env = make_task_env("pick_cube")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        env.step(np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0], np.float32))


def test_dense_reward_grows_as_the_tool_nears_the_cube():
    env = make_task_env("pick_cube", reward_type="dense")
    env.reset(seed=0)
    u = env.unwrapped
    far = env.step(np.zeros(4, np.float32))[1]
    cube = u.task.cube_pos()
    u.robot.move_to(cube + [0, 0, 0.01], duration_s=1.5)
    near = env.step(np.array([0, 0, 0, -1], np.float32))[1]
    assert 0.0 < far < near < 1.0, (far, near)


def test_a_20_hz_env_steps_half_as_long_and_the_same_action_moves_the_tool_as_far():
    env = make_task_env("pick_cube", control_rate_hz=20.0)
    obs, info = env.reset(seed=0)
    t0, x0 = info["t_capture"], obs[0]
    for _ in range(4):
        obs, _, _, _, info = env.step(np.array([1.0, 0.0, 0.0, -1.0], np.float32))
    for _ in range(4):
        obs, _, _, _, info = env.step(np.array([0.0, 0.0, 0.0, -1.0], np.float32))
    assert info["t_capture"] == pytest.approx(t0 + 8 * 0.05, abs=1e-9)
    assert obs[0] - x0 == pytest.approx(4 * 0.025, abs=0.006)


@pytest.mark.parametrize("task", ["pick_cube", "peg_insert"])
def test_the_sim_cell_takes_its_facts_from_the_cores_single_table(task):
    """Proprio layout, tool-down orientation, workspace box, object layout and episode length are defined once, in
    robot_rl.cell (what the ROS actor reads); the sim holds the very same objects, not copies."""
    from robot_rl import cell as layout
    from robot_rl_sim import env as sim_env
    from robot_rl_sim import tasks

    spec = layout.task_spec(task)
    cell = make_task_env(task).unwrapped
    assert sim_env.PROPRIO_LAYOUT is layout.PROPRIO_LAYOUT and tasks.TOOL_DOWN_QUAT_WXYZ is layout.TOOL_DOWN_QUAT_WXYZ
    assert cell.task.workspace is spec.workspace and cell.task.object_state_layout is spec.object_state_layout
    assert cell.task.max_episode_steps == spec.max_episode_steps == 100
    assert cell.robot.spec.workspace == spec.workspace  # the arm's box, and so the sim robot's safety filter's
    obs, _ = cell.reset(seed=0)
    s = cell.robot.read()
    np.testing.assert_array_equal(
        obs[:PROPRIO_DIM], layout.proprio(s.ee_pos_m, s.ee_quat_wxyz, s.ee_linvel_m_s, s.gripper_width_m, s.q_rad)
    )
    cell.close()


def test_each_task_brings_its_action_scale_and_wrist_lens_and_an_explicit_scale_wins():
    """peg_insert moves half as far per full action and sees the hole through a narrower wrist lens than
    pick_cube (robot_rl.cell.TaskSpec); the lens shows in the cameras' recorded intrinsics."""
    from robot_rl.cell import task_spec

    focal = {}
    for task in ("pick_cube", "peg_insert"):
        spec = task_spec(task)
        env = make_task_env(task, obs_mode="pixels", image_size=64)
        u = env.unwrapped
        assert u.robot.spec.max_step_m == spec.max_step_m
        K = np.array(u.task_meta()["cameras"]["wrist"]["K"]).reshape(3, 3)
        assert K[1, 1] == pytest.approx(32.0 / np.tan(np.radians(spec.wrist_fovy_deg) / 2))
        focal[task] = K[1, 1]
        obs, _ = env.reset(seed=0)
        x0 = obs[keys.STATE][0]
        for _ in range(2):
            obs = env.step(np.array([1.0, 0.0, 0.0, 1.0], np.float32))[0]
        for _ in range(3):  # let the last step settle
            obs = env.step(np.array([0.0, 0.0, 0.0, 1.0], np.float32))[0]
        assert obs[keys.STATE][0] - x0 == pytest.approx(2 * spec.max_step_m, rel=0.25)
        env.close()
    assert task_spec("peg_insert").max_step_m == task_spec("pick_cube").max_step_m / 2
    assert focal["peg_insert"] > 1.5 * focal["pick_cube"]
    explicit = make_task_env("peg_insert", max_step_m=0.02).unwrapped
    assert explicit.robot.spec.max_step_m == 0.02
    explicit.close()
