"""ROS parameters of the actor node, as one typed dataclass (`robot_rl.ros.params.declare_config`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot_rl.cell import DEFAULT_JOINT_NAMES, OBS_MODES, TASKS, ActorLayout, task_spec
from robot_rl.interfaces import WorkspaceBox
from robot_rl.teleop.arbiter import ArbiterConfig
from robot_rl.viz import VIZ_MODES

WARMUPS = ("hold", "random", "teleop")
ON_LEARNER_LOST = ("continue", "hold")
STEERS = ("residual", "noise")  # how a base policy is fine-tuned: a residual on its action, or its noise (DSRL)


@dataclass(frozen=True)
class ActorConfig:
    """One parameter per field; `-p name:=value` or a params file sets them."""

    task: str = "pick_cube"  # task of the static table in robot_rl.cell (obs layout, action scale, workspace)
    obs_mode: str = "state"  # state: proprio + object state (needs task/object_state); pixels: proprio + images
    cameras: tuple[str, ...] = ("front", "wrist")  # cameras in pixels mode (topics <cam>/image_raw)
    joint_names: tuple[str, ...] = (
        DEFAULT_JOINT_NAMES  # arm joints read from joint_states, in order (UR: joint1..joint6)
    )
    success_from: str = "topic"  # topic: task/success (sim ground truth, or a reward node on hardware) ends episodes;
    # teleop: no task/success input, only the person's success / failure keys (demos before a classifier exists)
    image_size: int = (
        128  # square image side (px) of the observation; each camera's images are cropped, then resized to it
    )
    camera_crop: tuple[int, ...] = (
        0,
        0,
        0,
        0,
    )  # crop box x, y, w, h in the driver's pixels before the resize: 4 integers
    # for every camera, or 4 per camera in `cameras` order; all 0 = the largest centred square (640x480 -> x=80, 480x480)
    use_rotation: bool = False  # actions carry (drx, dry, drz), as the env's use_rotation
    control_rate_hz: float = 10.0  # actions per second, on the node's clock (sim time under use_sim_time)
    max_staleness_s: float = 0.3  # an input older than this (ROS clock) pauses the episode
    max_episode_steps: int = 0  # steps before truncation; 0 = the task's default
    store: str = "actor_episodes"  # path of this actor's own EpisodeStore (created, or appended to)
    policy_path: str = ""  # optional local Policy directory to start with; else wait for /learner/policy
    base_policy: str = ""  # residual RL: a local base policy dir (`robot-rl bc train` output or a saved Policy); the
    # learner then sends residual policies, and the actor executes clip(base + residual) and records base_action
    base_noise: float = 0.1  # residual RL before the first residual arrives: std of the noise added to the base action
    steer: str = "residual"  # with base_policy: residual (the learner's residual corrects the base's action) or noise
    # (DSRL: a flow base run from the policy's latent action, its initial noise; episodes record it as noise_action)
    noise_bound: float = 1.5  # steer:=noise: the latent action's noise spans [-this, this] per entry (N(0, 1) units)
    warmup: str = "hold"  # before any policy: hold (no episodes), random (uniform actions in [-1, 1]) or teleop
    # (episodes run, the arm holds unless a person drives: recording demonstrations on hardware)
    deterministic: bool = False  # act with the policy's mean action (evaluation) instead of sampling
    on_learner_lost: str = "continue"  # no acks for learner_timeout_s: continue acting, or hold after the episode
    learner_timeout_s: float = 5.0  # wall seconds without an acks message (heartbeat 1 s) before the learner is lost
    resend_interval_s: float = 2.0  # wall seconds between checks for unacked episodes; repeats back off to 30 s
    window_episodes: int = 4  # flow control: at most this many episodes past the learner's ack in flight (sent or
    # resent); the next goes when the learner acks one, so a slow learner is not buried (robot_rl.acting.delivery)
    reset_timeout_s: float = 10.0  # wall seconds to wait for the reset service's answer before asking again
    workspace_file: str = (
        ""  # workspace YAML from `robot-rl calibrate workspace`: the safety filter's box ("" = the task's)
    )
    max_step_m: float = 0.03  # safety filter: largest translation per control period
    max_speed_m_s: float = 0.30  # safety filter: translation speed limit
    max_accel_m_s2: float = 3.0  # safety filter: limit on the change of commanded velocity
    max_angvel_rad_s: float = 1.5  # safety filter: rotation speed limit
    seed: int = 0  # seeds warm-up actions and the policy's sampling noise
    threads: int = 1  # torch CPU threads for inference
    frame_threads: int = 2  # a tick's camera frames through the frozen trunk on up to this many threads at once (the
    # tick's own and workers at control_priority; robot_rl.nets.frame_split); 1 = one pass on the tick's thread
    control_priority: int = 50  # SCHED_FIFO priority (1..99) of the thread that runs the tick, while it runs one, when
    # the process may (root, CAP_SYS_NICE, `ulimit -r`); else nice -10, else as started; 0 = off (acting.realtime)
    wake_lead_ms: float = 10.0  # that thread takes the priority this long before each tick is due, so a loaded machine
    # wakes it on time (robot_rl.acting.wake); 0 = only while the tick runs
    cpu_latency_us: int = 0  # the node holds /dev/cpu_dma_latency at this many us while it runs, where permitted: no
    # deep CPU idle states between ticks (robot_rl.acting.cpu_latency); negative = leave them as the system sets them
    teleop_timeout_s: float = 0.5  # wall seconds without a teleop/command message before the device counts as lost
    teleop_translation_scale: float = 1.0  # a full teleop stick -> this fraction of a full translation action
    teleop_rotation_scale: float = 1.0  # a full teleop twist -> this fraction of a full rotation action
    hold_on_teleop_loss: bool = False  # also hold the arm when a teleop device drops while the policy acts
    max_policy_bytes: int = 256 << 20  # a /learner/policy message larger than this is refused before it is read
    timing_log: str = (
        ""  # JSON-lines file to append raw per-tick timings to (one line per episode and per policy load; "" = off)
    )
    record_mcap: bool = False  # record inputs, commands, actions and episode markers as a rosbag2 MCAP file
    # <store>_<UTC time>.mcap beside the store (robot_rl.nodes.actor_record; `data import --format rosbag2` reads it)

    viz: str = "none"  # rerun: a Rerun view of every step (cameras, actions, reward, interventions, episodes) in
    # <store>-viz.rrd beside the store, logged on a thread of its own (robot_rl.viz.actor); none: off
    viz_connect: str = ""  # with viz:=rerun: stream to the Rerun viewer at this address instead of the file

    def validate(self) -> None:
        choices = {
            "task": (self.task, tuple(TASKS)),
            "obs_mode": (self.obs_mode, OBS_MODES),
            "warmup": (self.warmup, WARMUPS),
            "on_learner_lost": (self.on_learner_lost, ON_LEARNER_LOST),
            "viz": (self.viz, VIZ_MODES),
            "steer": (self.steer, STEERS),
        }
        for name, (value, valid) in choices.items():
            if value not in valid:
                raise ValueError(f"parameter {name}={value!r}; choose one of {list(valid)}")
        positive = {
            "control_rate_hz": self.control_rate_hz,
            "max_staleness_s": self.max_staleness_s,
            "learner_timeout_s": self.learner_timeout_s,
            "resend_interval_s": self.resend_interval_s,
            "window_episodes": self.window_episodes,
            "reset_timeout_s": self.reset_timeout_s,
            "teleop_timeout_s": self.teleop_timeout_s,
            "image_size": self.image_size,
            "threads": self.threads,
            "frame_threads": self.frame_threads,
            "max_policy_bytes": self.max_policy_bytes,
        }
        bad = {k: v for k, v in positive.items() if not v > 0}
        if not self.base_noise >= 0:
            bad["base_noise"] = self.base_noise
        if self.steer == "noise" and not (self.base_policy and 0.0 < self.noise_bound < 10.0):
            raise ValueError(
                f"steer:=noise steers a flow base's noise: it needs base_policy:=DIR and 0 < noise_bound < 10 "
                f"(got base_policy={self.base_policy!r}, noise_bound={self.noise_bound})"
            )
        self.camera_boxes()  # raises on a malformed camera_crop
        if not 0 <= self.control_priority <= 99:
            raise ValueError(
                f"control_priority must be 0 (off) or a SCHED_FIFO priority 1..99, got {self.control_priority}"
            )
        if not (math.isfinite(self.wake_lead_ms) and self.wake_lead_ms >= 0):
            raise ValueError(f"wake_lead_ms must be 0 (off) or a positive number of ms, got {self.wake_lead_ms}")
        if bad or self.max_episode_steps < 0 or not self.store:
            raise ValueError(
                f"need positive {sorted(positive)}, max_episode_steps >= 0 and a store path; got "
                f"{bad or ''} max_episode_steps={self.max_episode_steps} store={self.store!r}"
            )

    def camera_boxes(self) -> dict[str, tuple[int, int, int, int] | None]:
        """camera -> its crop box (x, y, w, h) from `camera_crop`, None for a centred crop (a box of four zeros)."""
        n = len(self.camera_crop)
        if n not in (4, 4 * len(self.cameras)) or min(self.camera_crop, default=0) < 0:
            raise ValueError(
                f"camera_crop must be 4 integers >= 0 (x, y, w, h) for every camera, or 4 per camera in "
                f"cameras order ({4 * len(self.cameras)} for {list(self.cameras)}); got {list(self.camera_crop)}"
            )
        boxes = [tuple(self.camera_crop[i : i + 4]) for i in range(0, n, 4)]
        boxes = boxes * len(self.cameras) if n == 4 else boxes
        return {cam: (None if not any(box) else box) for cam, box in zip(self.cameras, boxes)}

    def may_start_episode(self, has_policy: bool, learner_alive: bool) -> bool:
        """Whether a new episode may begin: something to act with, and a learner unless on_learner_lost=continue."""
        return (has_policy or self.warmup != "hold" or bool(self.base_policy)) and (
            self.on_learner_lost == "continue" or learner_alive
        )

    def arbiter(self) -> ArbiterConfig:
        """How teleop commands become actions (the actor's actions are base-frame deltas)."""
        return ArbiterConfig(
            use_rotation=self.use_rotation,
            policy_frame="base",
            translation_scale=self.teleop_translation_scale,
            rotation_scale=self.teleop_rotation_scale,
            hold_on_idle_disconnect=self.hold_on_teleop_loss,
        )

    def safety_box(self) -> WorkspaceBox:
        """The safety filter's workspace: the calibrated one from workspace_file, else the task's."""
        if not self.workspace_file:
            return task_spec(self.task).workspace
        from robot_rl_calibration.io import load_workspace

        return load_workspace(self.workspace_file)

    def layout(self) -> ActorLayout:
        spec = task_spec(self.task)
        return ActorLayout(
            spec,
            self.obs_mode,
            tuple(self.cameras),
            self.image_size,
            self.control_rate_hz,
            self.max_episode_steps or spec.max_episode_steps,
            self.use_rotation,
            tuple(self.joint_names),
            self.success_from,
        )
