"""gymnasium env over the MuJoCo cell: `make_task_env("pick_cube", obs_mode="pixels")`.

Registered by `robot_rl.envs` as `robot_rl/PickCube-v0` and `robot_rl/PegInsert-v0`.

Action: Box(-1, 1) float32 `[dx, dy, dz, (drx, dry, drz,) gripper]`; translation scaled by
`max_step_m` (the task's, `robot_rl.cell.TaskSpec.max_step_m`, unless given), rotation (only with the task's
`use_rotation`) by `max_step_rad`, both in the base frame; gripper a in [-1, 1] -> closing command (a + 1) / 2 (-1 open, +1 closed).
Observation: `obs_mode="state"` -> float32 (18 + object,) = proprio + the task's object state;
`obs_mode="pixels"` -> Dict(state: float32 (18,) proprio, image_<camera>: uint8 (H, W, 3) per camera).
Proprio = ee pos (3) + ee quat wxyz (4, sign fixed to the tool-down hemisphere) + ee linvel (3)
+ gripper width (1) + joint q (7).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from robot_rl import keys  # noqa: E402
from robot_rl.cell import PROPRIO_DIM, PROPRIO_LAYOUT, proprio, task_spec  # noqa: E402  (the cell's facts, once)
from robot_rl.interfaces import EECommand  # noqa: E402
from robot_rl_sim import scene  # noqa: E402
from robot_rl_sim.camera import CameraRig, MujocoCamera, intrinsics  # noqa: E402
from robot_rl_sim.contact import apply_to_model, contact_profile  # noqa: E402
from robot_rl_sim.robot import MujocoRobot  # noqa: E402
from robot_rl_sim.tasks import make_task  # noqa: E402

OBS_MODES = ("state", "pixels")
REWARD_TYPES = ("sparse", "dense")


class RobotCellEnv(gym.Env):
    """One task in the simulated robot cell. Use `make_task_env` (adds the time limit)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str = "pick_cube",
        obs_mode: str = "state",
        render_mode: str | None = None,
        image_size: int = 128,
        cameras: tuple[str, ...] = ("front", "wrist"),
        control_rate_hz: float = 10.0,
        reward_type: str = "sparse",
        terminate_on_success: bool = True,
        render_size: int = 256,
        max_step_m: float | None = None,
        max_step_rad: float = 0.15,
        contact: str | None = None,
        **task_kw,
    ):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={obs_mode!r}; choose one of {OBS_MODES}")
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type={reward_type!r}; choose one of {REWARD_TYPES}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}; choose None or one of {self.metadata['render_modes']}")
        unknown = [c for c in cameras if c not in scene.CAMERAS]
        if unknown or not cameras:
            raise ValueError(f"cameras={tuple(cameras)!r}; choose one or more of {scene.CAMERAS}")
        self.task = make_task(task, **task_kw)
        self.contact, profile = contact_profile(contact)  # robot_rl_sim.contact: "stiff" unless asked
        self.task.reseat_grasp = profile.reseat_grasp
        self.obs_mode, self.render_mode, self.reward_type = obs_mode, render_mode, reward_type
        self.image_size, self.camera_names, self.render_size = int(image_size), tuple(cameras), int(render_size)
        self.terminate_on_success = terminate_on_success
        self.metadata = {**self.metadata, "render_fps": control_rate_hz}

        self.model = scene.build_model(
            task,
            objects_xml=self.task.objects_xml,
            objects_qpos=self.task.objects_qpos,
            offscreen_width=max(self.image_size * len(self.camera_names), self.render_size),
            offscreen_height=max(self.image_size, self.render_size),
            wrist_fovy_deg=task_spec(task).wrist_fovy_deg,
        )
        if self.contact != "stiff":
            apply_to_model(self.model, profile)
        self.data = mujoco.MjData(self.model)
        self.robot = MujocoRobot(
            self.model,
            self.data,
            control_rate_hz,
            self.task.workspace,
            max_step_m=task_spec(task).max_step_m if max_step_m is None else max_step_m,
            max_step_rad=max_step_rad,
            impedance=profile.impedance,
        )
        self.task.bind(self.model, self.data, self.robot)
        self._dt_s = 1.0 / control_rate_hz
        self._home_key = self.model.key("home").id
        self._rig: CameraRig | None = None
        self._cameras: dict[str, MujocoCamera] = {}
        self._render_renderer: mujoco.Renderer | None = None

        self.action_layout = (
            ["dx", "dy", "dz"] + (["drx", "dry", "drz"] if self.task.use_rotation else []) + ["gripper"]
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(self.action_layout),), np.float32)
        self._object_dim = sum(n for _, n in self.task.object_state_layout)
        if obs_mode == "state":
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (PROPRIO_DIM + self._object_dim,), np.float32)
        else:
            spaces = {keys.STATE: gym.spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32)}
            for cam in self.camera_names:
                spaces[keys.image_key(cam)] = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
            self.observation_space = gym.spaces.Dict(spaces)

    # --- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetDataKeyframe(self.model, self.data, self._home_key)
        mujoco.mj_forward(self.model, self.data)
        self.robot.go_home()
        self.task.reset(self.np_random)
        return self._observation(), self._info(self.task.is_success())

    def step(self, action):
        a = np.asarray(action, dtype=np.float32)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {a.shape}; expected {self.action_space.shape} laid out as {self.action_layout}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        a = np.clip(a, -1.0, 1.0).astype(np.float64)
        spec = self.robot.spec
        rot = a[3:6] * spec.max_step_rad if self.task.use_rotation else np.zeros(3)
        self.robot.command(
            EECommand(delta_pos_m=a[:3] * spec.max_step_m, delta_rotvec_rad=rot, gripper=(a[-1] + 1.0) / 2.0)
        )
        self.robot.advance(self._dt_s)
        success = self.task.is_success()
        if self.reward_type == "sparse":
            reward = 1.0 if success else 0.0
        else:
            reward = self.task.dense_reward()
        terminated = success and self.terminate_on_success
        return self._observation(), reward, terminated, False, self._info(success)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._render_renderer is None:
            self._render_renderer = mujoco.Renderer(self.model, self.render_size, self.render_size)
        self._render_renderer.update_scene(self.data, camera="front")
        return self._render_renderer.render()

    def close(self) -> None:
        if self._rig is not None:
            self._rig.close()
            self._rig, self._cameras = None, {}
        if self._render_renderer is not None:
            self._render_renderer.close()
            self._render_renderer = None

    # --- robot_rl extras --------------------------------------------------------------------
    @property
    def rig(self) -> CameraRig:
        """Renders all cameras at `image_size` in one pass (created on first use: state mode renders nothing)."""
        if self._rig is None:
            self._rig = CameraRig(self.model, self.data, self.camera_names, self.image_size, self.image_size)
            rate = self.robot.spec.control_rate_hz
            self._cameras = {name: MujocoCamera(self._rig, name, rate) for name in self.camera_names}
        return self._rig

    @property
    def cameras(self) -> dict[str, MujocoCamera]:
        """name -> MujocoCamera (Camera interface) of the rig."""
        _ = self.rig  # builds the rig and its cameras on first use
        return self._cameras

    def task_meta(self) -> dict:
        """Plain-typed (JSON-able) description of the env, saved as dataset metadata."""
        spec = self.robot.spec
        if self.obs_mode == "state":
            state_layout = [*PROPRIO_LAYOUT, *self.task.object_state_layout]
        else:
            state_layout = list(PROPRIO_LAYOUT)
        return {
            "task": self.task.name,
            "obs_mode": self.obs_mode,
            "control_rate_hz": spec.control_rate_hz,
            "max_episode_steps": self.task.max_episode_steps,
            "reward_type": self.reward_type,
            "contact": self.contact,
            "image_size": self.image_size,
            "cameras": {
                name: {
                    "width": self.image_size,
                    "height": self.image_size,
                    "K": list(intrinsics(self.model, name, self.image_size, self.image_size)),
                }
                for name in self.camera_names
            },
            "action_layout": list(self.action_layout),
            "action_scale": {
                "max_step_m": spec.max_step_m,
                "max_step_rad": spec.max_step_rad,
                "gripper": "closing = (a + 1) / 2",
            },
            "obs_layout": {keys.STATE: [[name, n] for name, n in state_layout]}
            | (
                {keys.image_key(c): [self.image_size, self.image_size, 3] for c in self.camera_names}
                if self.obs_mode == "pixels"
                else {}
            ),
            "workspace": {"low_m": list(spec.workspace.low_m), "high_m": list(spec.workspace.high_m)},
        }

    # --- observation ------------------------------------------------------------------------
    def proprio(self) -> np.ndarray:
        """float32 (18,): see PROPRIO_LAYOUT."""
        s = self.robot.read()
        return proprio(s.ee_pos_m, s.ee_quat_wxyz, s.ee_linvel_m_s, s.gripper_width_m, s.q_rad)

    def _observation(self):
        if self.obs_mode == "state":
            return np.concatenate([self.proprio(), self.task.object_state()])
        obs = {keys.STATE: self.proprio()}
        for name, image in self.rig.render().items():
            obs[keys.image_key(name)] = image
        return obs

    def _info(self, success: bool) -> dict:
        info = {"success": bool(success), "t_capture": float(self.data.time)}
        offset = self.task.goal_offset_m()
        if offset is not None:  # simulator truth for evaluation reports (robot-rl eval --per-episode), not an input
            info["goal_offset_m"] = offset
        slip = self.task.grasp_slip_m()
        if slip is not None:  # the same: how far the held peg was pushed back into the hand
            info["grasp_slip_m"] = slip
        return info


def make_task_env(
    task: str,
    obs_mode: str = "state",
    render_mode: str | None = None,
    image_size: int = 128,
    cameras: tuple[str, ...] = ("front", "wrist"),
    control_rate_hz: float = 10.0,
    max_episode_steps: int | None = None,
    reward_type: str = "sparse",
    **kw,
) -> gym.Env:
    """The task's env wrapped in `TimeLimit` (default length: the task's `max_episode_steps`, 100 at 10 Hz).

    Extra keywords go to `RobotCellEnv` (terminate_on_success, render_size, max_step_m, max_step_rad)
    or the task's dataclass (e.g. lift_height_m=0.08, randomize_yaw=True, use_rotation=True).
    Note: `gymnasium.make(id, max_episode_steps=N)` adds its own TimeLimit outside this one, so
    through gymnasium.make it can only shorten episodes; call this function to lengthen them.
    """
    env = RobotCellEnv(task, obs_mode, render_mode, image_size, tuple(cameras), control_rate_hz, reward_type, **kw)
    if max_episode_steps is not None:
        env.task.max_episode_steps = int(max_episode_steps)
    steps = env.task.max_episode_steps
    return gym.wrappers.TimeLimit(env, max_episode_steps=steps)
