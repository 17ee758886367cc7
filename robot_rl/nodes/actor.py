"""The actor as a ROS 2 node: robot topics -> observation -> policy -> safety filter -> commands; episodes -> learner.

    robot-rl-actor-node --ros-args -r __ns:=/robot_1 -r __node:=actor -p task:=pick_cube -p obs_mode:=state \
        -p store:=/data/robot_1_actor -p use_sim_time:=true -r /clock:=/robot_1/clock

One main loop, `_tick`, at `control_rate_hz` on the node's clock (simulation time under `use_sim_time`):
hold while no episode runs; otherwise assemble the observation from the freshest sample of every input
(pausing, with one log line, while any is older than `max_staleness_s`), record the step the previous
action completed, let the acting core (robot_rl.acting.core, shared with `robot-rl train`) choose the next
one (policy; before any policy uniform random with `warmup:=random`; base + residual with `base_policy`) and
let the intervention arbiter decide who acts (a person's command on `teleop/command` -- any teleop node, or the
scripted operator -- replaces the policy's while they are engaged; robot_rl.teleop.arbiter), pass it through
the SafetyFilter and publish it as a twist (delta / dt) and a gripper closing ((a + 1) / 2). Every step
records the executed action, the policy's own proposal and `is_intervention`. The person's success / failure
keys end the episode (terminated, reward 1 / 0, overriding the task's success flag); re-record drops it
(neither stored nor sent). A teleop device that goes silent for `teleop_timeout_s` mid-intervention holds
the arm until the person engages again or the episode ends.
Episodes: `reset` service -> fresh data -> act until `task/success` (terminated, reward 1) or
`max_episode_steps` (truncated) -> hold, store (durable) -> publish on /learner/episodes -> next
(robot_rl.nodes.actor_episodes). A wall-clock timer (`_housekeeping`, robot_rl.nodes.actor_learner) watches
the learner's acks heartbeat and resends unacknowledged episodes from the store (robot_rl.nodes.actor_delivery).
Weights from /learner/policy (at most `max_policy_bytes`) are decoded, checked and built on a worker thread
(the newest message wins; robot_rl.nodes.actor_policy, which says what held the GIL when an earlier decoder
thread delayed commands by up to 150-200 ms); the tick swaps in only a policy that is fully built, right
after its command is out.
No message can end the node or stop its tick: every subscription runs behind `robot_rl.ros.guard`, which
refuses what its callback raised on with one rate-limited log line naming the topic, and counts it.
Status: `actor_status` (std_msgs/String JSON, latched, every 0.5 s wall): phase, ticks, policy version,
episodes stored, learner presence, `refused` {topic: count}, and per camera the driver's image size, the crop
and, once `<cam>/camera_info` arrived, the intrinsics of the observation's images (robot_rl.nodes.actor_inputs).
Parameters: `robot_rl.acting.config.ActorConfig`; the logic without ROS: `robot_rl.acting`; the
actor<->learner contract: `robot_rl.ros.protocol`.

Timing (`robot-rl bench ros`): per running tick the wall period, inference time, tick-to-command time and
observation->command latency (robot_rl.acting.timing), summarised in the episode's log line and, with
`timing_log` set, appended to that file as JSON lines.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import rclpy
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Joy
from std_msgs.msg import Float64, String, UInt8MultiArray
from std_srvs.srv import Trigger

from robot_rl import keys
from robot_rl.acting.config import ActorConfig
from robot_rl.acting.core import node_acting
from robot_rl.acting.cpu_latency import CpuLatencyHold
from robot_rl.acting.episode import EpisodeMachine, Phase
from robot_rl.acting.observation import ObservationAssembler
from robot_rl.acting.realtime import DDS_THREADS, ThreadPriority, TickPriority, raise_named_threads
from robot_rl.acting.timing import TickTiming
from robot_rl.acting.wake import WakeThread, WakeWindow
from robot_rl.agents.policy import Policy
from robot_rl.agents.residual import ResidualPolicy
from robot_rl.bc.base import BaseActionError
from robot_rl.data.recorder import EpisodeRecorder
from robot_rl.data.store import EpisodeStore, StoreError
from robot_rl.interfaces import EECommand
from robot_rl.nets.frame_split import set_frame_threads
from robot_rl.nodes import actor_inputs
from robot_rl.nodes.actor_delivery import EpisodeDelivery
from robot_rl.nodes.actor_episodes import ActorEpisodeSide
from robot_rl.nodes.actor_learner import ActorLearnerSide
from robot_rl.nodes.actor_policy import PolicyLoader
from robot_rl.nodes.actor_record import ActorTrace
from robot_rl.ros import convert, protocol, topics
from robot_rl.ros.guard import Refusals
from robot_rl.ros.params import declare_config
from robot_rl.ros.teleop_convert import teleop_fields_from_msg
from robot_rl.safety import SafetyFilter, SafetyLimits
from robot_rl.teleop.arbiter import verdict_of
from robot_rl.teleop.link import TeleopLink
from robot_rl.viz.actor import make_actor_viz

ACTOR_STATUS = "actor_status"  # relative: /robot_1/actor_status


class ActorNode(ActorLearnerSide, ActorEpisodeSide, Node):
    """One robot's actor: reads its (namespaced) robot topics, commands it, and feeds the learner."""

    def __init__(self, **node_kw):
        super().__init__("actor", **node_kw)
        self.cfg = cfg = declare_config(self, ActorConfig())
        cfg.validate()
        torch.set_num_threads(cfg.threads)
        frame_threads = cfg.frame_threads if cfg.obs_mode == "pixels" else 1
        for line in set_frame_threads(frame_threads, cfg.control_priority):  # workers at the tick's priority
            self.get_logger().info(line)
        torch.manual_seed(cfg.seed)
        self.layout = cfg.layout()
        self.actor_id = self.get_fully_qualified_name()
        self.assembler = ObservationAssembler(self.layout, cfg.max_staleness_s)
        self.machine = EpisodeMachine(self.layout.max_episode_steps, cfg.reset_timeout_s)
        self.store = EpisodeStore.open_or_create(cfg.store, self.layout.task_meta())
        self.recorder = EpisodeRecorder(self.store)
        self.delivery = EpisodeDelivery(
            self,
            self.store,
            self.layout.task_meta(),
            cfg.learner_timeout_s,
            cfg.resend_interval_s,
            cfg.on_learner_lost,
            cfg.window_episodes,
        )  # episodes -> learner (encoded and published on its own sender thread), acks
        self.safety = SafetyFilter(
            SafetyLimits(
                workspace=cfg.safety_box(),
                max_step_m=cfg.max_step_m,
                max_speed_m_s=cfg.max_speed_m_s,
                max_accel_m_s2=cfg.max_accel_m_s2,
                max_angvel_rad_s=cfg.max_angvel_rad_s,
            )
        )
        self.policy_version = -1  # learner update step of the weights in use (-1: none)
        self.timing = TickTiming(self.layout.dt_s, cfg.timing_log)
        self.acting = node_acting(
            cfg,
            self.layout.action_dim,
            lambda: 2.0 * self._gripper - 1.0,  # who acts, how
            obs_spec=self.layout.obs_spec(),
        )
        if cfg.policy_path:
            self._use_policy(
                (Policy if self.acting.base is None else ResidualPolicy).load(cfg.policy_path),
                0,
                f"local {cfg.policy_path}",
            )
        self.teleop = TeleopLink(cfg.teleop_timeout_s)  # wall clock: a device's heartbeat is a wall-time matter
        self._interventions = 0  # intervened steps of the running episode
        # (executed, proposed, is_intervention, base action) of the step awaiting its outcome
        # and the latent action of noise steering (None without it)
        self._pending: tuple[np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray | None] | None = None
        self._gripper = 0.0  # last gripper closing sent
        self._episode_version = -1  # newest policy version that acted in the running episode
        self._published_s = 0.0  # node-clock stamp of the last command published
        self.loader = PolicyLoader(cfg.max_policy_bytes)  # decodes /learner/policy off the tick (worker thread)
        if self.acting.policy is not None and self.policy_version == 0:  # the local policy: the learner's of the
            self.loader.hold(self.acting.policy, 0)  # same base shares its trunk, and its deltas apply to it
        self.refusals = Refusals(self)
        self.cameras = actor_inputs.CameraInputs(self.layout, cfg.camera_boxes())  # crop + resize, intrinsics
        self._ticks = 0
        self._last_tick = time.monotonic()  # wall time of the last tick (is the node's clock running?)
        self.control_thread: ThreadPriority | None = None  # the tick's scheduling (take_control_thread)
        self.tick_priority = TickPriority(cfg.control_priority)  # SCHED_FIFO while a tick runs, where permitted
        self.wake = WakeWindow(self.layout.dt_s, cfg.wake_lead_ms / 1e3)  # ... and from just before it is due
        self.wake_thread: WakeThread | None = None  # take_control_thread starts it
        self.cpu_latency: CpuLatencyHold | None = None  # ... and holds this
        self._make_io()
        self.trace = ActorTrace(self, cfg, cfg.store)  # actor/episode + actor/step; the MCAP recording (record_mcap)
        self.viz = make_actor_viz(cfg, self.layout, self.get_logger().warning)  # viz:=rerun, on its own thread
        self.get_logger().info(
            f"actor {self.actor_id} up: task={cfg.task} obs_mode={cfg.obs_mode} {cfg.control_rate_hz} Hz, "
            f"store {self.store.path} ({self.store.n_episodes} episodes), inputs {list(self.assembler.required)}, "
            f"policy {'v0 from ' + cfg.policy_path if self.acting.policy else 'none yet (warmup=' + cfg.warmup + ')'}"
            f"{', residual on the base ' + cfg.base_policy if self.acting.base is not None else ''}"
            f"{', noise-steering the flow base ' + cfg.base_policy if self.acting.steering is not None else ''}"
        )

    def _make_io(self) -> None:
        def sub(msg_type, topic, callback, qos):  # every callback behind the guard: a bad message is refused
            self.create_subscription(msg_type, topic, self.refusals.guarded(topic, callback), qos)

        for name, msg_type, qos, to_value in actor_inputs.table(self.layout, self.cameras):
            sub(msg_type, name, lambda msg, name=name, fn=to_value: self._on_input(name, fn, msg), qos)
        for topic, msg_type, qos, callback in self.cameras.info_table():
            sub(msg_type, topic, callback, qos)
        sub(String, protocol.ACKS, self.delivery.on_acks, protocol.LATCHED_QOS)
        sub(Joy, topics.TELEOP_COMMAND, self._on_teleop, topics.COMMAND_QOS)
        sub(UInt8MultiArray, protocol.POLICY, self.loader.offer, protocol.LATCHED_QOS)
        sub(UInt8MultiArray, protocol.POLICY_DELTA, self.loader.offer_delta, protocol.LATCHED_QOS)
        self.pub_status = self.create_publisher(String, ACTOR_STATUS, protocol.LATCHED_QOS)
        self.pub_twist = self.create_publisher(TwistStamped, topics.EE_COMMAND, topics.COMMAND_QOS)
        self.pub_gripper = self.create_publisher(Float64, topics.GRIPPER_COMMAND, topics.COMMAND_QOS)
        self.reset_client = self.create_client(Trigger, topics.RESET)
        self.create_timer(self.layout.dt_s, self._tick)  # the node's clock: sim time under use_sim_time
        self.create_timer(0.5, self._housekeeping, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # --- main loop --------------------------------------------------------------------------
    def take_control_thread(self) -> None:
        """Called by the thread that will spin the node (it runs `_tick` and every callback): SCHED_FIFO at
        `control_priority` while it runs a tick and from `wake_lead_ms` before (robot_rl.acting.wake), when permitted,
        else a fallback; log lines say which. Not between ticks: the callbacks at FIFO took 65 % of a core and starved
        an ordinary arm process (robot_rl.acting.realtime). The DDS library's receive threads go one below it: a
        sim-time tick starts when they hand over /clock (robot_rl.acting.realtime)."""
        self.control_thread = got = self.tick_priority.permitted()
        self.get_logger().info(got.line)
        self.cpu_latency = CpuLatencyHold(self.cfg.cpu_latency_us)  # no deep idle states while the node runs
        self.get_logger().info(self.cpu_latency.line)
        self.wake_thread = WakeThread(self.wake, self.tick_priority)  # raises it just before each tick is due
        self.get_logger().info(self.wake_thread.line)
        if got.policy == "SCHED_FIFO":
            self.get_logger().info(raise_named_threads(DDS_THREADS, max(1, got.rt_priority - 1), "DDS threads"))

    def _tick(self) -> None:
        with self.tick_priority:  # SCHED_FIFO for this tick only, where permitted (take_control_thread)
            self._last_tick = time.monotonic()
            self.wake.started(self._last_tick)
            self.timing.tick_started()
            self._ticks += 1
            self._control()
            self._take_policy()  # a policy the worker finished is swapped in after the command is out

    def _control(self) -> None:
        now_s, m = self._now_s(), self.machine
        if m.phase is Phase.WAITING:
            self._hold()
            if self.cfg.may_start_episode(self.acting.policy is not None, self.delivery.learner_alive):
                self._request_reset()
        elif m.phase is Phase.RESETTING:
            self._hold()
            if m.reset_timed_out(time.monotonic()):
                self.get_logger().warning(f"reset service gave no answer in {self.cfg.reset_timeout_s} s: asking again")
        elif m.phase is Phase.SETTLING:
            self._hold()
            if self.assembler.fresh_since(m.t_reset_s):
                m.start()
                self._act(first=True)
            elif now_s - m.t_reset_s > 1.0:
                self.get_logger().warning(
                    f"reset done {now_s - m.t_reset_s:.1f} s ago, still no fresh "
                    f"{self.assembler.waiting_for(m.t_reset_s)}",
                    throttle_duration_sec=5.0,
                )
        else:
            line = m.check_inputs(self.assembler.stale(now_s), now_s)
            if m.phase is Phase.PAUSED:
                if line:
                    self.get_logger().warning(line)
                    self.timing.tick_wall_s.append(float("nan"))  # the pause is no control period
                self._hold()
            else:
                if line:
                    self.get_logger().info(line)
                self.timing.tick_wall_s.append(time.monotonic())
                self._act(first=False)

    def _act(self, first: bool) -> None:
        """Observe; close the previous step (a person's verdict, the task's success or the time limit may end the
        episode, a re-record discards it); else choose (policy, then the arbiter: a person's command wins), filter
        and send the next action, and record the previous step."""
        obs, info = self.assembler.assemble()
        cmd = self.teleop.read(time.monotonic())
        if first:
            self.recorder.start(obs, info)
            self.trace.episode("start", self._now_ns(), episode=self.store.n_episodes)
            self.safety.reset()
            self.acting.reset()
            self._episode_version = self.policy_version
            self.timing.reset()
            self._interventions = 0
            if cmd is not None and cmd.events:  # keys pressed between episodes do not judge this one
                cmd = replace(cmd, events=tuple(e for e in cmd.events if e in ("take_over", "release")))
        # the person's verdict, the task's success flag and the time limit are known before the policy is asked:
        # a step that ends the episode costs no inference and sends nothing
        verdict = verdict_of(cmd)
        if verdict == "rerecord" or (verdict and self._pending is None):
            self._discard_episode(verdict)
            return
        outcome = None
        if self._pending is not None:
            outcome = self.machine.record_step(info["success"], verdict)
            if verdict:  # the person's word is the success flag of this step (it overrides a classifier's)
                info = {**info, "success": verdict == "success"}
            if outcome.done:
                self._record_pending(obs, outcome, info)
                self._end_episode(verdict)
                return
        quat = obs[keys.STATE][3:7] if keys.STATE in obs else None
        try:
            choice = self.acting.choose(obs, warmup=self.acting.policy is None, cmd=cmd, ee_quat_wxyz=quat)
        except BaseActionError as err:  # a base policy that raised or returned a bad action: a hold, never a crash
            self.refusals.refuse("base_policy", str(err))
            choice = self.acting.refused_choice("base_policy")  # a NaN action: the safety filter makes it a hold
        if choice.infer_s is not None:  # the policy acted
            self.timing.infer_s.append(choice.infer_s)
            self._episode_version = max(self._episode_version, self.policy_version)
        executed = self._send(choice.action, obs[keys.STATE][:3])
        self.timing.command_sent(time.monotonic() - self._last_tick)
        self.timing.latency_s.append(
            self._published_s - min(v for k, v in info.items() if k.startswith(keys.T_CAPTURE))
        )
        if outcome is not None:
            self._record_pending(obs, outcome, info)
        self._interventions += int(choice.is_intervention)
        # nothing non-finite is stored: a refused proposal is recorded as what was executed (the hold)
        proposed = choice.proposed
        self._pending = (
            executed,
            proposed if np.all(np.isfinite(proposed)) else executed,
            choice.is_intervention,
            executed if choice.base_action is None else choice.base_action,
            choice.latent_action,
        )
        executed, proposed, is_intervention, base, _ = self._pending
        self.trace.step(executed, proposed, base, is_intervention, self._now_ns())
        if self.viz is not None:  # queued, never waited for
            row = self.store.n_steps + self.recorder.n_steps
            self.viz.act(row, self.store.n_episodes, obs, executed, proposed, base, is_intervention)

    def _send(self, action: np.ndarray, ee_pos_m: np.ndarray) -> np.ndarray:
        """Action -> SafetyFilter -> twist + gripper on the wire; returns the executed action (A,) in [-1, 1]."""
        cmd = self.layout.command_from_action(action)
        result = self.safety.filter(cmd, ee_pos_m, self.layout.dt_s, last_gripper=self._gripper)
        if result.rejected:
            self.get_logger().warning(
                f"safety filter refused action {action.tolist()}: {result.reason}", throttle_duration_sec=1.0
            )
        self._publish(result.command)
        return self.layout.action_from_command(result.command)

    def _publish(self, cmd: EECommand) -> None:
        now_ns = self._now_ns()
        self._published_s = now_ns * 1e-9
        twist = convert.twist_from_command(cmd, self.layout.dt_s, self._published_s, topics.BASE_FRAME)
        self.pub_twist.publish(twist)
        self._gripper = float(cmd.gripper)
        gripper = convert.gripper_command_msg(self._gripper)
        self.pub_gripper.publish(gripper)
        self.trace.record(topics.EE_COMMAND, twist, now_ns)
        self.trace.record(topics.GRIPPER_COMMAND, gripper, now_ns)

    def _hold(self) -> None:
        """Zero twist (the arm keeps its target); the gripper keeps its last command."""
        self.safety.reset()
        zero, now_ns = np.zeros(3), self._now_ns()
        twist = convert.twist_msg(zero, zero, now_ns * 1e-9, topics.BASE_FRAME)
        self.pub_twist.publish(twist)
        self.trace.record(topics.EE_COMMAND, twist, now_ns)

    # --- teleop -----------------------------------------------------------------------------
    def _on_teleop(self, msg: Joy) -> None:
        self.trace.record(topics.TELEOP_COMMAND, msg, self._now_ns())
        self.teleop.receive(**teleop_fields_from_msg(msg, topics.BASE_FRAME), t_s=time.monotonic())

    # --- robot inputs -----------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_input(self, name: str, to_value: actor_inputs.Converter, msg) -> None:
        """Convert a robot message and offer it to the assembler; a malformed one raises (the guard refuses it)."""
        now_ns = self._now_ns()
        self.trace.record(name, msg, now_ns)  # as received: the import refuses what the converter refuses here
        value, stamp_s = to_value(msg)
        self.assembler.put(name, value, now_ns * 1e-9 if stamp_s is None else stamp_s)


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-actor-node`. SIGINT/SIGTERM only set a flag that the spin loop checks, so a signal
    never lands inside a callback: an episode being written finishes first, and the exit code is 0."""
    rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        try:
            node = ActorNode()
        except (ValueError, StoreError, FileNotFoundError) as err:  # a bad parameter, store or policy path
            print(f"robot-rl-actor-node: {err}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        gc.collect()
        gc.freeze()  # start-up's ~190k objects (torch, rclpy) leave the collector: a full collection in a tick then
        # scans only what the actor made since, instead of stalling it ~100-250 ms (measured on a loaded 2-core machine)
        node.take_control_thread()  # this thread runs the tick: real-time priority where permitted
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        if node is not None:
            if node.recorder.recording:
                node.get_logger().info(f"exiting: the episode in flight ({node.recorder.n_steps} steps) is not stored")
                node.timing.write_episode(None, node._episode_version)
            node.close_workers()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
