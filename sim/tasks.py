"""The simulated tasks: their objects, randomised resets, ground-truth success and rewards.

pick_cube   a 4 cm cube lies on the table at a random position and yaw; success = the cube is
            held between both finger pads with its bottom >= `lift_height_m` above the table.
peg_insert  a 2 x 2 x 8 cm peg starts grasped in the closed gripper (placed there at reset, the grip
            settled by physics) above a random spot; a fixture with a square hole (1.5 mm total
            clearance, 4 cm deep) sits at a random position (and yaw, if `randomize_yaw`);
            success = the peg's tip is >= `success_depth_m` inside the hole.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_rl.cell import TOOL_DOWN_QUAT_WXYZ, task_spec
from robot_rl.interfaces import WorkspaceBox
from robot_rl_sim import scene
from robot_rl_sim.robot import MujocoRobot

__all__ = ["TOOL_DOWN_QUAT_WXYZ", "Task", "PickCube", "PegInsert", "make_task"]


def _yaw_quat(yaw_rad: float) -> np.ndarray:
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


class Task(abc.ABC):
    """What a task adds to the cell and how it judges it. `bind` is called once the model is compiled."""

    reseat_grasp = False  # robot_rl_sim.contact: seat a held object at the tool point once the fingers have closed

    name: str
    objects_xml: str
    objects_qpos: str  # home keyframe part of the objects' free joints
    workspace: WorkspaceBox
    use_rotation: bool  # the action carries (drx, dry, drz)
    max_episode_steps: int  # default episode length at 10 Hz
    object_state_layout: tuple[tuple[str, int], ...]  # (name, size) of the object part of the state vector

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData, robot: MujocoRobot) -> None:
        self.model, self.data, self.robot = model, data, robot
        pad_ids = [
            model.geom(i).id
            for i in range(model.ngeom)
            if model.geom_bodyid[i] in (model.body("left_finger").id, model.body("right_finger").id)
        ]
        self._left_pad, self._right_pad = pad_ids
        self._bind(model)

    @abc.abstractmethod
    def _bind(self, model: mujoco.MjModel) -> None:
        """Resolve the task's names to ids."""

    @abc.abstractmethod
    def reset(self, rng: np.random.Generator) -> None:
        """Place objects and the arm for a new episode (the data has just been reset to the home keyframe)."""

    @abc.abstractmethod
    def object_state(self) -> np.ndarray:
        """float32 (sum of object_state_layout sizes,): ground-truth object state."""

    @abc.abstractmethod
    def is_success(self) -> bool: ...

    @abc.abstractmethod
    def dense_reward(self) -> float:
        """Shaped reward in [0, 1]; 1 only on success."""

    def goal_offset_m(self) -> np.ndarray | None:
        """(3,) where the task's goal point lies relative to what the robot must bring there, in the base frame
        (simulator truth, for evaluation reports only: never an observation); None where the task names none."""
        return None

    def goal_pos_m(self) -> np.ndarray | None:
        """(3,) the task's goal point in the base frame (simulator truth: for choosing where scripted demos happen
        and for reports, never an observation); None where the task names none."""
        return None

    def grasp_slip_m(self) -> float | None:
        """How far the held object has been pushed back into the hand since the episode began, along the tool axis
        (m; simulator truth for evaluation reports only); None where the task starts with nothing in the hand."""
        return None

    def pads_touch(self, geom_id: int) -> tuple[bool, bool]:
        """Whether the left and right finger pads are in contact with `geom_id`."""
        left = right = False
        d = self.data
        for i in range(d.ncon):
            g1, g2 = d.contact.geom1[i], d.contact.geom2[i]
            if geom_id in (g1, g2):
                other = g2 if g1 == geom_id else g1
                left |= other == self._left_pad
                right |= other == self._right_pad
        return left, right

    def settle_arm(self, rng: np.random.Generator, center_m: np.ndarray, jitter_m: np.ndarray, gripper: float) -> None:
        """Drive the tool to a random start pose near `center_m` (pointing down) and let it come to rest."""
        start = center_m + rng.uniform(-jitter_m, jitter_m)
        self.robot.set_gripper(gripper)
        self.robot.move_to(start, TOOL_DOWN_QUAT_WXYZ, duration_s=0.6)
        self.robot.hold()


@dataclass
class PickCube(Task):
    cube_half_m: float = 0.02  # 4 cm cube
    lift_height_m: float = 0.05  # cube bottom above the table that counts as lifted
    cube_x_range_m: tuple[float, float] = (0.42, 0.62)
    cube_y_range_m: tuple[float, float] = (-0.15, 0.15)
    cube_yaw_range_rad: float = math.pi / 4  # cube yaw uniform in +- this
    use_rotation: bool = False
    max_episode_steps: int = task_spec("pick_cube").max_episode_steps

    # the cell's facts are the core's (robot_rl.cell.TASKS): the ROS actor reads the same ones
    name = "pick_cube"
    workspace = task_spec("pick_cube").workspace
    object_state_layout = task_spec("pick_cube").object_state_layout

    def __post_init__(self) -> None:
        h = self.cube_half_m
        self.objects_xml = f"""
    <body name="cube" pos="0.5 0 {h}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{h} {h} {h}" mass="0.08" rgba="0.85 0.1 0.1 1" friction="1 0.01 0.0002"/>
    </body>"""
        self.objects_qpos = f"0.5 0 {h} 1 0 0 0"

    def _bind(self, model: mujoco.MjModel) -> None:
        self._cube_geom = model.geom("cube").id
        self._cube_body = model.body("cube").id
        self._cube_qpos = model.jnt_qposadr[model.joint("cube").id]

    def reset(self, rng: np.random.Generator) -> None:
        d, a = self.data, self._cube_qpos
        d.qpos[a : a + 3] = (rng.uniform(*self.cube_x_range_m), rng.uniform(*self.cube_y_range_m), self.cube_half_m)
        d.qpos[a + 3 : a + 7] = _yaw_quat(rng.uniform(-self.cube_yaw_range_rad, self.cube_yaw_range_rad))
        mujoco.mj_forward(self.model, d)
        self.settle_arm(rng, np.array([0.5, 0.0, 0.22]), np.array([0.05, 0.08, 0.03]), gripper=0.0)

    def cube_pos(self) -> np.ndarray:
        return self.data.xpos[self._cube_body].copy()

    def object_state(self) -> np.ndarray:
        d = self.data
        cube = d.xpos[self._cube_body]
        tcp = self.robot.controller.tool_pose()[0]
        return np.concatenate([cube, d.xquat[self._cube_body], tcp - cube]).astype(np.float32)

    def is_grasped(self) -> bool:
        return all(self.pads_touch(self._cube_geom))

    def goal_pos_m(self) -> np.ndarray:
        return self.cube_pos()

    def goal_offset_m(self) -> np.ndarray:
        """The cube's centre relative to the tool point."""
        return self.cube_pos() - self.robot.controller.tool_pose()[0]

    def lift_m(self) -> float:
        return float(self.data.xpos[self._cube_body][2] - self.cube_half_m)

    def is_success(self) -> bool:
        return self.lift_m() >= self.lift_height_m and self.is_grasped()

    def dense_reward(self) -> float:
        if self.is_success():
            return 1.0
        reach = 1.0 - math.tanh(10.0 * float(np.linalg.norm(self.robot.controller.tool_pose()[0] - self.cube_pos())))
        grasped = self.is_grasped()
        lift = min(max(self.lift_m() / self.lift_height_m, 0.0), 1.0) if grasped else 0.0
        return 0.3 * reach + 0.2 * float(grasped) + 0.4 * lift


@dataclass
class PegInsert(Task):
    peg_half_width_m: float = 0.01  # 2 x 2 cm square section
    peg_half_length_m: float = 0.04  # 8 cm long
    clearance_m: float = 0.0015  # total gap between peg and hole (0.75 mm a side)
    hole_depth_m: float = 0.04
    success_depth_m: float = 0.025  # peg tip this far below the hole's rim counts as inserted
    hole_x_range_m: tuple[float, float] = (0.45, 0.62)
    hole_y_range_m: tuple[float, float] = (-0.15, 0.15)
    randomize_yaw: bool = False  # hole yaw uniform in +-30 deg; needs use_rotation to be solvable
    use_rotation: bool = False
    max_episode_steps: int = task_spec("peg_insert").max_episode_steps

    name = "peg_insert"
    workspace = task_spec("peg_insert").workspace
    object_state_layout = task_spec("peg_insert").object_state_layout

    def __post_init__(self) -> None:
        if self.randomize_yaw and not self.use_rotation:
            raise ValueError("peg_insert: randomize_yaw=True needs use_rotation=True (the peg must turn to fit)")
        w, length = self.peg_half_width_m, self.peg_half_length_m
        inner = w + self.clearance_m / 2  # half width of the hole
        wall = 0.025  # wall thickness
        hd = self.hole_depth_m / 2
        off = inner + wall / 2
        half_span = inner + wall
        walls = "\n".join(
            f'      <geom type="box" size="{sx} {sy} {hd}" pos="{px} {py} {hd}" rgba="0.1 0.65 0.2 1" solref="0.004 1" solimp="0.95 0.99 0.001"/>'
            for sx, sy, px, py in (
                (wall / 2, half_span, off, 0.0),
                (wall / 2, half_span, -off, 0.0),
                (inner, wall / 2, 0.0, off),
                (inner, wall / 2, 0.0, -off),
            )
        )
        self.objects_xml = f"""
    <body name="hole" mocap="true" pos="0.55 0 0">
{walls}
      <site name="hole_rim" pos="0 0 {self.hole_depth_m}" size="0.003" rgba="1 1 0 0" group="4"/>
    </body>
    <body name="peg" pos="0.5 0 0.3">
      <freejoint name="peg"/>
      <geom name="peg" type="box" size="{w} {w} {length}" mass="0.05" rgba="0.15 0.35 0.9 1" friction="1 0.01 0.0002"/>
      <site name="peg_tip" pos="0 0 {-length}" size="0.003" rgba="1 1 0 0" group="4"/>
    </body>"""
        self.objects_qpos = "0.5 0 0.3 1 0 0 0"

    def _bind(self, model: mujoco.MjModel) -> None:
        self._peg_geom = model.geom("peg").id
        self._peg_body = model.body("peg").id
        self._peg_qpos = model.jnt_qposadr[model.joint("peg").id]
        self._peg_dof = model.jnt_dofadr[model.joint("peg").id]
        self._tip_site = model.site("peg_tip").id
        self._rim_site = model.site("hole_rim").id
        self._hole_mocap = model.body_mocapid[model.body("hole").id]
        self._tcp_site = model.site(scene.TCP_SITE).id
        self.hole_yaw_rad = 0.0
        self._grasp_depth0 = 0.0

    def reset(self, rng: np.random.Generator) -> None:
        d = self.data
        self.hole_yaw_rad = float(rng.uniform(-math.pi / 6, math.pi / 6)) if self.randomize_yaw else 0.0
        d.mocap_pos[self._hole_mocap] = (rng.uniform(*self.hole_x_range_m), rng.uniform(*self.hole_y_range_m), 0.0)
        d.mocap_quat[self._hole_mocap] = _yaw_quat(self.hole_yaw_rad)
        # Park the peg, bring the open hand to the start pose, then put the peg between the pads and close.
        self.settle_arm(rng, np.array([0.5, 0.0, 0.2]), np.array([0.05, 0.08, 0.02]), gripper=0.0)
        tcp_pos, tcp_quat = self.robot.controller.tool_pose()
        a = self._peg_qpos
        d.qpos[a : a + 3] = tcp_pos
        d.qpos[a + 3 : a + 7] = (1.0, 0.0, 0.0, 0.0)  # upright, faces parallel to the pads and to the hole at yaw 0
        d.qvel[self._peg_dof : self._peg_dof + 6] = 0.0
        self.robot.set_gripper(1.0)
        self.robot.advance(0.3)
        if self.reseat_grasp:  # fingers closing fast squeeze the peg up or let it drop a few mm: seat it again
            d.qpos[a : a + 3] = self.robot.controller.tool_pose()[0]
            d.qpos[a + 3 : a + 7] = (1.0, 0.0, 0.0, 0.0)
            d.qvel[self._peg_dof : self._peg_dof + 6] = 0.0
            self.robot.advance(0.1)
        self.robot.hold()
        self._grasp_depth0 = self._grasp_depth()

    def _grasp_depth(self) -> float:
        """The peg's centre along the tool axis from the tool point (m; the axis points out of the hand)."""
        tcp = self.robot.controller.tool_pose()[0]
        axis = self.data.site_xmat[self._tcp_site].reshape(3, 3)[:, 2]
        return float((self.data.xpos[self._peg_body] - tcp) @ axis)

    def grasp_slip_m(self) -> float:
        """How far the peg has been pushed back into the hand since reset (a tip landing on the fixture's top or
        rim does it; then the fingers meet the fixture before the tip is `success_depth_m` deep)."""
        return self._grasp_depth0 - self._grasp_depth()

    def tip_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._tip_site].copy()

    def goal_pos_m(self) -> np.ndarray:
        return self.rim_pos()

    def rim_pos(self) -> np.ndarray:
        return self.data.site_xpos[self._rim_site].copy()

    def object_state(self) -> np.ndarray:
        d = self.data
        hole = d.mocap_pos[self._hole_mocap]
        yaw = (math.cos(self.hole_yaw_rad), math.sin(self.hole_yaw_rad))
        return np.concatenate(
            [d.xpos[self._peg_body], d.xquat[self._peg_body], hole, yaw, self.tip_pos() - self.rim_pos()]
        ).astype(np.float32)

    def goal_offset_m(self) -> np.ndarray:
        """The hole's rim centre relative to the peg's tip (x, y: off the hole's axis; z > 0: the tip below the rim)."""
        return self.rim_pos() - self.tip_pos()

    def insertion_depth_m(self) -> float:
        """How far the peg's tip is below the rim, counted only while the tip is inside the hole's footprint."""
        tip, rim = self.tip_pos(), self.rim_pos()
        if np.linalg.norm(tip[:2] - rim[:2]) > self.clearance_m + 0.002:
            return 0.0
        return max(float(rim[2] - tip[2]), 0.0)

    def is_success(self) -> bool:
        return self.insertion_depth_m() >= self.success_depth_m

    def dense_reward(self) -> float:
        if self.is_success():
            return 1.0
        tip, rim = self.tip_pos(), self.rim_pos()
        align = 1.0 - math.tanh(20.0 * float(np.linalg.norm(tip[:2] - rim[:2])))
        above = 1.0 - math.tanh(10.0 * abs(float(tip[2] - rim[2])))
        depth = self.insertion_depth_m() / self.success_depth_m
        return 0.3 * align + 0.2 * align * above + 0.4 * depth


TASKS: dict[str, type[Task]] = {"pick_cube": PickCube, "peg_insert": PegInsert}


def make_task(name: str, **kw) -> Task:
    """A task by name; `kw` sets its dataclass fields (e.g. lift_height_m=0.08)."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
    return cls(**kw)
