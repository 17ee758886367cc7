"""The cell's facts, defined once and without the simulator: the task table, observation layout and action scale.

The ROS actor must produce exactly the observations and actions of the gymnasium env over the sim
(`robot_rl_sim.env`), so episodes from `robot-rl demos record` and from the actor are interchangeable,
but `robot_rl/` may not import MuJoCo. So the few numbers it needs live here, in a static table keyed
by task; `tests/test_acting_episodes.py` checks them against the sim env's `task_meta()`.

Observation (gym env, `obs_mode`):
  state   {state: float32 (18 + object,)} = proprio + the task's object state
  pixels  {state: float32 (18,) proprio, image_<cam>: uint8 (H, W, 3) per camera}
Proprio (PROPRIO_LAYOUT) = ee pos (3, m, base frame) + ee quat wxyz (4, sign fixed to the hemisphere of
TOOL_DOWN_QUAT_WXYZ) + ee linear velocity (3, m/s) + gripper width (1, m) + arm joint q (7, rad).
Action: float32 in [-1, 1], `[dx, dy, dz, (drx, dry, drz,) gripper]`; translation * max_step_m and
rotation * max_step_rad are the tool-target delta per control period (base frame); the gripper's
closing command is (a + 1) / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_rl import keys
from robot_rl.interfaces import EECommand, WorkspaceBox

PROPRIO_LAYOUT = (("ee_pos", 3), ("ee_quat", 4), ("ee_linvel", 3), ("gripper_width", 1), ("joint_q", 7))
PROPRIO_DIM = sum(n for _, n in PROPRIO_LAYOUT)  # 18
SUCCESS_SOURCES = ("topic", "teleop")  # where an actor's success flag comes from
DEFAULT_JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 8))  # the sim's (and the Franka driver's) joint names
TOOL_DOWN_QUAT_WXYZ = np.array([0.0, math.sqrt(0.5), math.sqrt(0.5), 0.0])  # tool pointing down (home)
OBS_MODES = ("state", "pixels")


WRIST_FOVY_DEG = 80.0  # the wrist camera's vertical field of view (deg) unless a task narrows it


@dataclass(frozen=True)
class TaskSpec:
    """The per-task numbers of the robot cell (mirrors `robot_rl_sim.tasks` and `RobotCellEnv`)."""

    name: str
    object_state_layout: tuple[tuple[str, int], ...]  # (name, size) of the object part of the state
    workspace: WorkspaceBox  # tool-point box in the base frame (m)
    max_episode_steps: int = 100  # default episode length at 10 Hz
    max_step_m: float = 0.025  # translation of a full action (+-1) per control period
    max_step_rad: float = 0.15  # rotation of a full action per control period (only with use_rotation)
    pixel_demos: int = 20  # scripted demos a training run records from pixels unless told (`--scripted-demos`)
    wrist_fovy_deg: float = WRIST_FOVY_DEG  # the sim wrist camera lens (vertical fov); on hardware: its crop


TASKS: dict[str, TaskSpec] = {
    "pick_cube": TaskSpec(
        "pick_cube",
        (("cube_pos", 3), ("cube_quat", 4), ("cube_to_tcp", 3)),
        WorkspaceBox(low_m=(0.3, -0.25, 0.012), high_m=(0.7, 0.25, 0.32)),
        # from pixels, 20-episode evaluations to 6 k: with 20 demos 2 of 5 seeds fell below .8 after their first 90 %
        # (.55, .75), with 40 none (session 32, docs/benchmarks.md)
        pixel_demos=40,
    ),
    "peg_insert": TaskSpec(
        "peg_insert",
        (("peg_pos", 3), ("peg_quat", 4), ("hole_pos", 3), ("hole_yaw_cos_sin", 2), ("tip_to_hole", 3)),
        WorkspaceBox(low_m=(0.3, -0.25, 0.03), high_m=(0.7, 0.25, 0.32)),
        # from pixels, after their first 90 %, 3 of 5 seeds fell below .8 with 20 demos, 1 of 5 with 40 (docs/benchmarks.md,
        # session 30); from state 20 suffice (90 % at 3-4 k env steps in 5 of 5 seeds, none below .9 after)
        pixel_demos=40,
        # half pick_cube's translation per full action: the last millimetre is a 0.08 action, not 0.04 (session 31)
        max_step_m=0.0125,
        # a narrower wrist view: 1 mm beside the hole is ~0.6 px of the 128-px wrist image at 80 deg, ~1.1 px at 50
        # (hovering 15-20 mm above the rim; session 31)
        wrist_fovy_deg=50.0,
    ),
}


def task_spec(task: str) -> TaskSpec:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}") from None


def action_scale_mismatch(meta: dict, task: str) -> str:
    """Why episodes whose store meta is `meta` do not fit the sim task `task` now ("" when they do): recorded with
    another translation per full action, their actions mean other motions. Meta without a scale passes."""
    got = (meta.get("action_scale") or {}).get("max_step_m")
    want = task_spec(task).max_step_m
    if got is None or abs(float(got) - want) <= 1e-9:
        return ""
    return (
        f"were recorded with {float(got) * 1e3:g} mm per full action, {task} now moves {want * 1e3:g} mm: record "
        f"them again (robot-rl demos record --task {task} --scripted ...)"
    )


@dataclass(frozen=True)
class ActorLayout:
    """The observation and action spaces of one actor, as the gym env defines them."""

    task: TaskSpec
    obs_mode: str  # "state" or "pixels"
    cameras: tuple[str, ...]  # cameras in the observation (pixels mode)
    image_size: int  # square image side (px)
    control_rate_hz: float  # one action per control period
    max_episode_steps: int  # episode length before truncation
    use_rotation: bool = False  # actions carry (drx, dry, drz)
    joint_names: tuple[str, ...] = DEFAULT_JOINT_NAMES  # arm joints read from joint_states by name, in this order
    success_from: str = "topic"  # "topic": task/success is an input; "teleop": only a person's keys judge episodes

    def __post_init__(self) -> None:
        if self.success_from not in SUCCESS_SOURCES:
            raise ValueError(f"success_from={self.success_from!r}; choose one of {SUCCESS_SOURCES}")
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be distinct and not empty, got {list(self.joint_names)}")
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={self.obs_mode!r}; choose one of {OBS_MODES}")
        if self.obs_mode == "pixels" and not self.cameras:
            raise ValueError("obs_mode='pixels' needs at least one camera, e.g. cameras=['front', 'wrist']")
        if not (self.control_rate_hz > 0 and self.max_episode_steps > 0 and self.image_size > 0):
            raise ValueError(
                f"need control_rate_hz > 0, max_episode_steps > 0, image_size > 0; got "
                f"{self.control_rate_hz}, {self.max_episode_steps}, {self.image_size}"
            )

    @property
    def dt_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def object_dim(self) -> int:
        return sum(n for _, n in self.task.object_state_layout)

    @property
    def state_layout(self) -> tuple[tuple[str, int], ...]:
        proprio = PROPRIO_LAYOUT[:-1] + (("joint_q", len(self.joint_names)),)  # 7 joints (Franka, sim), 6 (UR), ...
        return proprio + (self.task.object_state_layout if self.obs_mode == "state" else ())

    @property
    def image_cameras(self) -> tuple[str, ...]:
        """Cameras whose images are in the observation (none in state mode)."""
        return self.cameras if self.obs_mode == "pixels" else ()

    @property
    def action_layout(self) -> list[str]:
        return ["dx", "dy", "dz"] + (["drx", "dry", "drz"] if self.use_rotation else []) + ["gripper"]

    @property
    def action_dim(self) -> int:
        return len(self.action_layout)

    def obs_spec(self) -> dict[str, list[int]]:
        """key -> shape, as `robot_rl.spaces.obs_spec` describes the gym env's space (what a Policy carries)."""
        spec = {keys.image_key(c): [self.image_size, self.image_size, 3] for c in sorted(self.image_cameras)}
        return spec | {keys.STATE: [sum(n for _, n in self.state_layout)]}

    def task_meta(self) -> dict:
        """The gym env's `task_meta()` fields the store and learner compare (cameras without intrinsics)."""
        t = self.task
        obs_layout: dict = {keys.STATE: [[name, n] for name, n in self.state_layout]}
        obs_layout |= {keys.image_key(c): [self.image_size, self.image_size, 3] for c in self.image_cameras}
        return {
            "task": t.name,
            "obs_mode": self.obs_mode,
            "control_rate_hz": float(self.control_rate_hz),
            "max_episode_steps": self.max_episode_steps,
            "reward_type": "sparse",
            "image_size": self.image_size,
            "cameras": {c: {"width": self.image_size, "height": self.image_size} for c in self.cameras},
            "action_layout": self.action_layout,
            "action_scale": {
                "max_step_m": t.max_step_m,
                "max_step_rad": t.max_step_rad,
                "gripper": "closing = (a + 1) / 2",
            },
            "obs_layout": obs_layout,
            "workspace": {"low_m": list(t.workspace.low_m), "high_m": list(t.workspace.high_m)},
        }

    def policy_mismatch(self, obs_spec: dict[str, list[int]], action_dim: int) -> str:
        """Why a policy with this obs spec and action dim cannot act here ("" when it can)."""
        want = self.obs_spec()
        got = {k: list(v) for k, v in obs_spec.items()}
        problems = []
        if got != want:
            problems.append(f"observation spec {got} != this actor's {want}")
        if action_dim != self.action_dim:
            problems.append(f"action dim {action_dim} != {self.action_dim} ({self.action_layout})")
        return "; ".join(problems)

    # --- actions ----------------------------------------------------------------------------
    def command_from_action(self, action: np.ndarray) -> EECommand:
        """Normalised action (A,) -> tool-target delta for one control period, exactly as the gym env maps it.

        Values are clipped to [-1, 1]; non-finite values pass through unchanged for the safety filter to reject.
        """
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,):
            raise ValueError(
                f"action has shape {a.shape}; expected ({self.action_dim},) laid out as {self.action_layout}"
            )
        a = np.where(np.isfinite(a), np.clip(a, -1.0, 1.0), a)
        rot = a[3:6] * self.task.max_step_rad if self.use_rotation else np.zeros(3)
        return EECommand(delta_pos_m=a[:3] * self.task.max_step_m, delta_rotvec_rad=rot, gripper=(a[-1] + 1.0) / 2.0)

    def action_from_command(self, cmd: EECommand) -> np.ndarray:
        """Inverse of `command_from_action`: the normalised action (A,) float32 a (filtered) command amounts to."""
        parts = [np.asarray(cmd.delta_pos_m) / self.task.max_step_m]
        if self.use_rotation:
            parts.append(np.asarray(cmd.delta_rotvec_rad) / self.task.max_step_rad)
        parts.append([2.0 * cmd.gripper - 1.0])
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


def proprio(
    ee_pos_m: np.ndarray, ee_quat_wxyz: np.ndarray, ee_linvel_m_s: np.ndarray, gripper_width_m: float, q_rad: np.ndarray
) -> np.ndarray:
    """float32 (18,) in PROPRIO_LAYOUT order, the quaternion's sign fixed to the tool-down hemisphere."""
    quat = np.asarray(ee_quat_wxyz, dtype=np.float64)
    if float(np.dot(quat, TOOL_DOWN_QUAT_WXYZ)) < 0:
        quat = -quat
    return np.concatenate([ee_pos_m, quat, ee_linvel_m_s, [gripper_width_m], q_rad]).astype(np.float32)
