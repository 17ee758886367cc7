"""The scripted operator as a ROS node: watches the sim's ground truth, takes over on `teleop/command` like a person.

    robot-rl-operator-node --ros-args -r __ns:=/robot_1 -p task:=pick_cube -p use_sim_time:=true \
        -r /clock:=/robot_1/clock -p patience_steps:=10 -p max_fraction:=0.3

Every control period (node clock: simulation time under use_sim_time) it reads the newest
`task/object_state` (the sim's privileged, labelled object state), measures the task's progress
distance, and runs `robot_rl.teleop.operator.ScriptedOperator` with a ground-truth-state expert
(`robot_rl.teleop.state_experts`) -- then publishes the command on `teleop/command`, the same topic and
layout as the keyboard, gamepad and SpaceMouse nodes, so the actor cannot tell it from a person.
A new episode is recognised by the object jumping more than `reset_jump_m` while not in the gripper
(the sim's reset); the per-episode budget starts over then. With no object state for `stale_s`
the operator cannot see: it publishes connected = 0 (the arbiter then holds an intervention it was
driving, exactly as for a person's unplugged device). With `end_lost` it also reads `ee_pose`: a held peg pushed
`LOST_SLIP_M` into the hand since the episode began gets `failure` (the actor ends the episode) instead of take-overs.
Tasks: pick_cube and peg_insert (`robot_rl.teleop.state_experts`).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray

from robot_rl.cell import task_spec
from robot_rl.interfaces import TeleopCommand
from robot_rl.nodes.teleop import CommandPublisher, run_node
from robot_rl.ros import task_convert, topics
from robot_rl.ros.convert import MessageError
from robot_rl.ros.params import declare_config
from robot_rl.teleop.operator import (
    LOST_SLIP_M,
    GraspSlip,
    OperatorConfig,
    ScriptedOperator,
    distance_to_done_m,
    held_object_pos,
)
from robot_rl.teleop.state_experts import make_state_expert


@dataclass(frozen=True)
class OperatorNodeConfig:
    """ROS parameters of the operator node (the OperatorConfig fields plus where and how often)."""

    task: str = "pick_cube"  # the sim's task (its object state layout and expert)
    control_rate_hz: float = 10.0  # operator steps per second of node time (match the actor's control rate)
    use_rotation: bool = False  # the actor's actions carry rotations
    stale_s: float = 0.5  # no object state for this long (node clock): the operator cannot see -> connected = 0
    reset_jump_m: float = 0.03  # the object jumping this far in one step, not in the gripper, = a new episode
    base_frame: str = topics.BASE_FRAME  # frame_id stamped on teleop/command
    patience_steps: int = 10  # steps without progress before taking over
    min_progress_m: float = 0.01  # the progress distance must shrink this much over patience_steps
    away_m: float = 0.05  # take over at once when the distance grew this far above its best
    takeover_steps: int = 15  # steps driven per intervention
    max_interventions: int = 3  # budget: take-overs per episode
    max_fraction: float = 0.3  # budget: fraction of max_episode_steps driven per episode
    max_episode_steps: int = 100  # episode length the fraction refers to
    end_lost: bool = True  # a held peg pushed into the hand (ee_pose + object state): `failure`, not take-overs


class OperatorNode(Node):
    def __init__(self, **node_kw):
        super().__init__("scripted_operator", **node_kw)
        self.cfg = cfg = declare_config(self, OperatorNodeConfig())
        if cfg.control_rate_hz <= 0 or cfg.stale_s <= 0:
            raise ValueError(f"control_rate_hz and stale_s must be > 0, got {cfg.control_rate_hz}, {cfg.stale_s}")
        self.layout = task_spec(cfg.task).object_state_layout
        op_fields = {f.name for f in dataclasses.fields(OperatorConfig)}
        self.operator = ScriptedOperator(
            OperatorConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in op_fields}), cfg.use_rotation
        )
        self.expert = make_state_expert(cfg.task, cfg.use_rotation)
        self.out = CommandPublisher(self, cfg.base_frame)
        self._state: np.ndarray | None = None
        self._state_s = -1.0
        self._prev_object: np.ndarray | None = None
        self.episodes = 0
        self.create_subscription(Float32MultiArray, topics.TASK_OBJECT_STATE, self._on_object_state, topics.STATE_QOS)
        self.slip, self._tool = GraspSlip(), None  # (position, quaternion wxyz) of the newest ee_pose
        if cfg.end_lost:
            self.create_subscription(PoseStamped, topics.EE_POSE, self._on_ee_pose, topics.STATE_QOS)
        self.create_timer(1.0 / cfg.control_rate_hz, self._tick)
        self.get_logger().info(
            f"scripted operator up: task={cfg.task}, {cfg.control_rate_hz} Hz, patience "
            f"{cfg.patience_steps} steps, budget {cfg.max_interventions} take-overs / "
            f"{cfg.max_fraction:.0%} of {cfg.max_episode_steps} steps per episode"
        )

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_object_state(self, msg: Float32MultiArray) -> None:
        try:
            self._state = task_convert.object_state_from_msg(msg, self.layout)
            self._state_s = self._now_s()
        except MessageError as err:
            self.get_logger().warning(f"dropped task/object_state: {err}", throttle_duration_sec=2.0)

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        tool = (np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z]))
        if all(np.isfinite(v).all() for v in tool) and np.linalg.norm(tool[1]) > 0.5:
            self._tool = tool

    def _lost(self, state: np.ndarray) -> bool:
        """With end_lost: the held object pushed LOST_SLIP_M into the hand since the episode began (its depth at the
        episode's first tick with a tool pose is the reference)."""
        held = held_object_pos(self.cfg.task, state)
        if not self.cfg.end_lost or held is None or self._tool is None:
            return False
        return self.slip(*self._tool, held) >= LOST_SLIP_M

    def _new_episode(self, state: np.ndarray) -> bool:
        """The object jumped more than reset_jump_m in one tick: a reset. pick_cube's cube must be out of the gripper
        (cube_to_tcp > 5 cm: a lifted cube may move fast); peg_insert's peg is always in the hand."""
        obj, prev = state[:3], self._prev_object
        self._prev_object = obj.copy()
        may_reset = held_object_pos(self.cfg.task, state) is not None or np.linalg.norm(state[7:10]) > 0.05
        return prev is not None and np.linalg.norm(obj - prev) > self.cfg.reset_jump_m and may_reset

    def _tick(self) -> None:
        now = self._now_s()
        if self._state is None or now - self._state_s > self.cfg.stale_s:
            self.out.publish(TeleopCommand(np.zeros(6), None, False, t_capture=now, connected=False))
            return
        state = self._state
        if self._new_episode(state):
            self.episodes += 1
            op = self.operator
            self.get_logger().info(
                f"new episode (object moved): the last one had {op.interventions} take-overs, "
                f"{op.steps_driven} steps driven"
            )
            op.reset()
            self.expert.reset()
            self.slip.reset()
        action = self.expert.act(state)
        cmd = self.operator.step(distance_to_done_m(self.cfg.task, state), action, t_s=now, lost=self._lost(state))
        if cmd.events:
            self.get_logger().info(
                f"{' '.join(cmd.events)} (take-over {self.operator.interventions}, "
                f"{self.operator.steps_driven} steps driven this episode)"
            )
        self.out.publish(cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-operator-node`."""
    return run_node("robot-rl-operator-node", OperatorNode, argv)


if __name__ == "__main__":
    sys.exit(main())
