"""The simulated robot as a ROS 2 node: the arm node of the hardware, driving the MuJoCo task cell.

    robot-rl-sim-node --ros-args -r __ns:=/robot_1 -p task:=pick_cube -p seed:=3

One simulated robot, one command path. `SimRobotNode` IS the hardware arm node (`robot_rl_drivers.arm_node.ArmNode`:
lifecycle, latched commands, watchdog, safety filter, hold, `estop`, `recover`, `arm_status`) with
`SimArmAdapter` over the task cell (`robot_rl_sim.env.RobotCellEnv`) as its adapter; its `reset` service
(the adapter's home move) draws the task's next randomised episode start. What only a simulation has lives
beside it, in `SimExtras`, in the same process because it reads the same physics state:

| name                        | type                      | what                                                   |
|-----------------------------|---------------------------|--------------------------------------------------------|
| /clock                      | rosgraph_msgs/Clock       | sim time, every control period (`publish_clock`)       |
| <cam>/image_raw, camera_info| sensor_msgs               | rendered cameras at `camera_rate_hz` (sim time)        |
| task/success                | std_msgs/Bool             | ground truth (a reward classifier's on hardware)       |
| task/object_state           | std_msgs/Float32MultiArray| the task's privileged object state, labelled           |
| success                     | std_srvs/Trigger          | success now, and the dense reward in the message       |
| sim_status                  | std_msgs/String (JSON)    | sim time and `refused` {topic: count}, once a wall second |

One main loop (`SimRobotNode.run`): `ArmNode.step` (faults, the latest command through the safety filter or
a hold, physics one control period, /clock, the state), then the task topics and the cameras when due, then
callbacks until the next tick's wall-clock deadline (`real_time_factor`; 0 runs as fast as possible). The
watchdog and every stamp use simulation time, which /clock publishes, so the graph runs with `use_sim_time`.
Sim time never goes backwards, also across resets. The safety filter's box is the task's workspace
(`workspace_*` parameters are the hardware's). Parameters: `SimNodeConfig` below and the arm node's
`robot_rl_drivers.arm_config.ArmNodeConfig` (control_rate_hz, watchdog_timeout_s, max_*, autostart, ...).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.clock import Clock as RosClock  # noqa: E402
from rclpy.clock import ClockType
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Bool, Float32MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from robot_rl.interfaces import Frame, WorkspaceBox  # noqa: E402
from robot_rl.ros import convert, task_convert, topics  # noqa: E402
from robot_rl.ros.params import declare_config  # noqa: E402
from robot_rl_drivers.adapter_sim import SimArmAdapter, SimArmConfig  # noqa: E402
from robot_rl_drivers.arm_node import ArmNode, serve  # noqa: E402
from robot_rl_sim.camera import camera_spec  # noqa: E402
from robot_rl_sim.camera_thread import CameraThread  # noqa: E402
from robot_rl_sim.env import RobotCellEnv, make_task_env  # noqa: E402

SIM_STATUS = "sim_status"  # relative: /robot_1/sim_status
STATUS_RATE_HZ = 1.0  # wall clock
STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class SimNodeConfig:
    """ROS parameters only the sim robot has (one parameter per field); the arm node's come beside them."""

    task: str = "pick_cube"  # robot_rl_sim task: pick_cube or peg_insert
    seed: int = 0  # seeds the node's RNG; every `reset` draws the next randomised start from it
    real_time_factor: float = 1.0  # sim seconds per wall second; 0 = as fast as possible
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras to render and publish
    camera_rate_hz: float = 10.0  # image + camera_info rate in sim time; 0 = publish no images
    image_size: int = 128  # square image side in pixels
    publish_clock: bool = True  # publish /clock (remap it per robot when several sims run side by side)
    camera_thread: bool = True  # draw the cameras on a thread of their own (sim/camera_thread.py), not in the period

    def validate(self, control_rate_hz: float) -> None:
        if control_rate_hz <= 0 or self.camera_rate_hz < 0 or self.real_time_factor < 0:
            raise ValueError(
                f"need control_rate_hz > 0, camera_rate_hz >= 0, real_time_factor >= 0; got "
                f"{control_rate_hz}, {self.camera_rate_hz}, {self.real_time_factor}"
            )
        if self.camera_rate_hz > control_rate_hz:
            raise ValueError(f"camera_rate_hz={self.camera_rate_hz} cannot exceed control_rate_hz={control_rate_hz}")


class SimExtras:
    """What only the simulation publishes, from the cell the arm node drives: /clock, cameras, task truth."""

    def __init__(self, node: ArmNode, env: RobotCellEnv, cfg: SimNodeConfig):
        self.node, self.env, self.cfg = node, env, cfg
        self.pub_success = node.create_publisher(Bool, topics.TASK_SUCCESS, topics.STATE_QOS)
        self.pub_object_state = node.create_publisher(Float32MultiArray, topics.TASK_OBJECT_STATE, topics.STATE_QOS)
        self.pub_clock = node.create_publisher(Clock, topics.CLOCK, topics.CLOCK_QOS) if cfg.publish_clock else None
        self.camera_specs, self.pub_images, self.pub_infos = {}, {}, {}
        self.camera_thread: CameraThread | None = None
        if cfg.camera_rate_hz > 0:
            for name in env.camera_names:
                self.camera_specs[name] = camera_spec(
                    env.model, name, cfg.image_size, cfg.image_size, cfg.camera_rate_hz
                )
                self.pub_images[name] = node.create_publisher(Image, topics.image_topic(name), topics.SENSOR_QOS)
                self.pub_infos[name] = node.create_publisher(
                    CameraInfo, topics.camera_info_topic(name), topics.SENSOR_QOS
                )
            if cfg.camera_thread:
                self.camera_thread = CameraThread(
                    env.model, env.data, env.camera_names, cfg.image_size, self.publish_images, self._camera_error
                )
        self._camera_failing = False
        self._next_camera_t = self.sim_time_s
        # refusals per command topic, latched, once a wall second (robot_rl.ros.guard: a bad message never ends the node)
        self.pub_status = node.create_publisher(String, SIM_STATUS, STATUS_QOS)
        node.create_timer(1.0 / STATUS_RATE_HZ, self.publish_status, clock=RosClock(clock_type=ClockType.STEADY_TIME))
        node.create_service(Trigger, topics.SUCCESS, self._on_success)

    @property
    def sim_time_s(self) -> float:
        return float(self.env.data.time)

    def publish_clock(self) -> None:
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=convert.stamp_from_seconds(self.sim_time_s)))

    def publish_task_and_cameras(self) -> None:
        """Ground-truth success and the labelled object state, every control period; the cameras when due."""
        task, t = self.env.task, self.sim_time_s
        self.pub_success.publish(Bool(data=bool(task.is_success())))
        self.pub_object_state.publish(task_convert.object_state_msg(task.object_state(), task.object_state_layout))
        if not self.camera_specs or t < self._next_camera_t - 1e-9:
            return
        if self.camera_thread is not None:
            self.camera_thread.capture(t)  # drawn and published on the camera thread
        else:
            self.publish_images(self.env.rig.render(), t)
        self._next_camera_t += 1.0 / self.cfg.camera_rate_hz
        if self._next_camera_t <= t:  # after a reset jumped time forward
            self._next_camera_t = t + 1.0 / self.cfg.camera_rate_hz

    def publish_images(self, images: dict[str, np.ndarray], t: float) -> None:
        """Each camera's image and camera_info, stamped with the sim time `t` of the state drawn."""
        for name, image in images.items():
            spec = self.camera_specs[name]
            self.pub_images[name].publish(convert.image_msg(Frame(image, t), spec.frame_id))
            self.pub_infos[name].publish(convert.camera_info_msg(spec, t))
        if self._camera_failing:
            self._camera_failing = False
            self.node.get_logger().info("camera frames are published again")

    def _camera_error(self, message: str) -> None:
        if not self._camera_failing:  # one line per transition, not per frame
            self._camera_failing = True
            self.node.get_logger().error(message)

    def publish_status(self) -> None:
        """sim_status: sim time, {topic: refused messages} and, with the camera thread, frames drawn, dropped (one
        still being drawn when the next fell due) and failed (std_msgs/String JSON)."""
        status = {"sim_time_s": round(self.sim_time_s, 6), "refused": self.node.refusals.as_dict()}
        if (cam := self.camera_thread) is not None:
            status["camera_frames"] = {"drawn": cam.drawn, "dropped": cam.dropped, "failed": cam.failed}
        self.pub_status.publish(String(data=json.dumps(status)))

    def _on_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = bool(self.env.task.is_success())
        response.message = f"dense_reward={self.env.task.dense_reward():.4f}"
        return response


class SimRobotNode(ArmNode):
    """The arm node over the MuJoCo task cell, paced on sim time, with `SimExtras` beside it."""

    paced_by_timer = False  # `run` steps it on sim time at real_time_factor

    def __init__(self, **node_kw):
        super().__init__("sim_robot", **node_kw)
        self.extras = SimExtras(self, self.env, self.sim_cfg)
        cfg = self.sim_cfg
        self.get_logger().info(
            f"sim robot up: task={cfg.task} seed={cfg.seed} control={self.cfg.control_rate_hz} Hz "
            f"cameras={list(cfg.cameras)}@{cfg.camera_rate_hz} Hz real_time_factor={cfg.real_time_factor}"
        )

    # --- the arm node's hooks -----------------------------------------------------------------
    def _declare_adapter(self) -> tuple[type, SimArmConfig]:
        """The sim's own parameters and its task cell (the adapter is always the simulated arm)."""
        if self.cfg.adapter != "sim":
            raise ValueError(
                f"robot-rl-sim-node drives the simulated cell (adapter sim), not {self.cfg.adapter!r}; "
                "run robot-rl-arm-node for a hardware adapter"
            )
        self.sim_cfg = declare_config(self, SimNodeConfig())
        self.sim_cfg.validate(self.cfg.control_rate_hz)
        cfg = self.sim_cfg
        self.env: RobotCellEnv = make_task_env(
            cfg.task,
            obs_mode="state",
            image_size=cfg.image_size,
            cameras=cfg.cameras,
            control_rate_hz=self.cfg.control_rate_hz,
        ).unwrapped
        return SimArmAdapter, SimArmConfig()

    def _workspace(self) -> WorkspaceBox:
        return self.env.task.workspace

    def make_adapter(self) -> SimArmAdapter:
        return SimArmAdapter(self.adapter_cfg, self.cfg.control_rate_hz, cell=self.env, seed=self.sim_cfg.seed)

    def now_s(self) -> float:
        """Simulation time: the watchdog's clock and every stamp."""
        return float(self.env.data.time)

    stamp_s = now_s
    sim_time_s = property(now_s)

    def after_tick(self) -> None:
        self.extras.publish_clock()

    def step(self) -> None:
        """One control period of the arm node (on SCHED_FIFO where permitted), then the task topics and the cameras
        when due (ordinary priority: a render may wait for the actor's tick, never the physics or /clock)."""
        super().step()
        if self.robot is not None:
            self.extras.publish_task_and_cameras()

    def run(self, executor: SingleThreadedExecutor, stop: threading.Event) -> None:
        """Step, publish, serve callbacks until the next tick; returns when `stop` is set or the context shuts down."""
        wall_period_s = self.dt_s / self.sim_cfg.real_time_factor if self.sim_cfg.real_time_factor > 0 else 0.0
        if wall_period_s > 0:  # paced: its periods outrank the actor's tick (as fast as possible: ordinary throughout)
            self.take_period_thread()
        deadline = time.monotonic()
        while rclpy.ok(context=self.context) and not stop.is_set():
            if self.robot is None:  # unconfigured: no physics to step, only lifecycle requests to serve
                executor.spin_once(timeout_sec=0.1)
                deadline = time.monotonic()
                continue
            self.step()
            if wall_period_s == 0.0:
                executor.spin_once(timeout_sec=0.0)
                continue
            deadline += wall_period_s
            while (remaining_s := deadline - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining_s)
            if remaining_s < -10 * wall_period_s:  # fell far behind (a slow render, a loaded machine): re-anchor
                deadline = time.monotonic()

    def close(self) -> None:
        extras = getattr(self, "extras", None)
        if extras is not None and extras.camera_thread is not None:
            extras.camera_thread.close()
        super().close()
        self.env.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-sim-node`: `robot-rl-sim-node --ros-args -r __ns:=/robot_1 -p task:=peg_insert`."""
    return serve(SimRobotNode, "robot-rl-sim-node", sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
