"""The reward node: a trained success classifier on the robot's camera images -> `task/success` for the actor.

    robot-rl-reward-node --ros-args -r __ns:=/robot_1 -p classifier:=runs/reward_pick

Subscribes `<cam>/image_raw` (sensor_msgs/Image, best effort) for every camera the classifier reads and,
every control period (node clock), runs it on the newest frame of each camera once a new frame has
arrived, then publishes `task/success` (std_msgs/Bool; the actor reads it as the success of the step)
and `task/success_probability` (std_msgs/Float32). While any camera's newest frame is older than
`max_staleness_s` nothing is published, so the actor's own staleness check pauses the episode rather
than acting on an old verdict. With the simulated robot, which publishes its ground truth on
`task/success` itself, remap one of them (e.g. `-r task/success:=task/success_classifier` here, and
compare, or remap the sim's away).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32

from robot_rl import keys
from robot_rl.nodes.teleop import run_node
from robot_rl.ros import topics
from robot_rl.ros.convert import frame_from_image
from robot_rl.ros.guard import Refusals
from robot_rl.ros.params import declare_config

SUCCESS_PROBABILITY = "task/success_probability"


@dataclass(frozen=True)
class RewardNodeConfig:
    """ROS parameters of the reward node."""

    classifier: str = ""  # directory written by `robot-rl reward train` (image or VLM classifier)
    rate_hz: float = 10.0  # publications per second of node time (the actor's control rate)
    max_staleness_s: float = 0.3  # a camera frame older than this (node clock, at receipt) stops publication
    threshold: float = -1.0  # success when probability >= threshold; < 0: the classifier's calibrated threshold
    device: str = "cpu"  # torch device for inference
    torch_threads: int = 1  # intra-op threads (1 keeps latency steady next to other nodes)
    log_every_s: float = 10.0  # a status line (published, p99 latency) this often


class RewardNode(Node):
    def __init__(self, **node_kw):
        super().__init__("reward", **node_kw)
        self.cfg = cfg = declare_config(self, RewardNodeConfig())
        if not cfg.classifier:
            raise ValueError("set -p classifier:=DIR (the --out directory of `robot-rl reward train`)")
        if cfg.rate_hz <= 0 or cfg.max_staleness_s <= 0:
            raise ValueError(f"rate_hz and max_staleness_s must be > 0, got {cfg.rate_hz}, {cfg.max_staleness_s}")
        torch.set_num_threads(max(1, cfg.torch_threads))
        self.predictor, self.cameras = None, []
        self._frames: dict[str, tuple[np.ndarray, float]] = {}  # camera -> (image, receipt time s)
        self._new = False
        self._last: tuple[bool, float] | None = None
        self.published = 0
        self.pub_success = self.create_publisher(Bool, topics.TASK_SUCCESS, topics.STATE_QOS)
        self.pub_prob = self.create_publisher(Float32, SUCCESS_PROBABILITY, topics.STATE_QOS)
        self.refusals = Refusals(self)  # whatever a callback raises on refuses the message, never ends the node
        if Path(cfg.classifier).exists():
            self._load()
        else:  # a cell brought up to record the demos the classifier is trained on: wait for it, publish nothing
            self.get_logger().warning(
                f"no classifier at {cfg.classifier} yet: publishing nothing until one is "
                "there (record frames and train one: robot-rl reward record / label / train)"
            )
            self._wait_timer = self.create_timer(2.0, self._load_when_there)
        self._last_log_s = self._now_s()

    def _load_when_there(self) -> None:
        """Every 2 s until the classifier loads (a directory still being written fails to load: try again)."""
        if not Path(self.cfg.classifier).exists():
            return
        try:
            self._load()
        except Exception as err:  # noqa: BLE001 - half-written or broken: say why, keep waiting, never end the node
            self.get_logger().warning(
                f"classifier {self.cfg.classifier} does not load yet: {err}", throttle_duration_sec=30.0
            )
            return
        self._wait_timer.cancel()

    def _load(self) -> None:
        """Load the classifier (a broken one raises: the node ends with its message), subscribe to its cameras."""
        from robot_rl.reward.evaluate import load_predictor

        cfg = self.cfg
        self.predictor = load_predictor(cfg.classifier, cfg.device, None if cfg.threshold < 0 else cfg.threshold)
        self.cameras = [keys.camera_of(k) for k in self.predictor.image_keys]
        for cam in self.cameras:
            self.create_subscription(
                Image,
                topics.image_topic(cam),
                self.refusals.guarded(topics.image_topic(cam), lambda m, c=cam: self._on_image(c, m)),
                topics.SENSOR_QOS,
            )
        self.create_timer(1.0 / cfg.rate_hz, self._tick)
        self.get_logger().info(
            f"reward classifier {cfg.classifier} up: cameras {self.cameras}, threshold "
            f"{self.predictor.threshold:.4f}, {cfg.rate_hz} Hz -> {topics.TASK_SUCCESS}, {SUCCESS_PROBABILITY}"
        )

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, camera: str, msg: Image) -> None:
        self._frames[camera] = (frame_from_image(msg).image, self._now_s())  # a bad image raises: the guard counts it
        self._new = True

    def _tick(self) -> None:
        now = self._now_s()
        stale = [
            c for c in self.cameras if c not in self._frames or now - self._frames[c][1] > self.cfg.max_staleness_s
        ]
        if stale:
            self.get_logger().warning(f"no fresh image from {stale}: not publishing", throttle_duration_sec=5.0)
            return
        if self._new or self._last is None:
            images = {keys.image_key(c): self._frames[c][0] for c in self.cameras}
            prob = float(self.predictor.probs(images)[0])
            self._last, self._new = (prob >= self.predictor.threshold, prob), False
        success, prob = self._last
        self.pub_success.publish(Bool(data=bool(success)))
        self.pub_prob.publish(Float32(data=prob))
        self.published += 1
        if now - self._last_log_s >= self.cfg.log_every_s and self.predictor.latencies_ms:
            lat = np.asarray(self.predictor.latencies_ms[-500:])
            self.get_logger().info(
                f"published {self.published}; inference p50 {np.percentile(lat, 50):.1f} ms, "
                f"p99 {np.percentile(lat, 99):.1f} ms; last p={prob:.3f}; "
                f"refused {self.refusals.as_dict()}"
            )
            self._last_log_s = now


def main(argv: list[str] | None = None) -> int:
    """Entry point `robot-rl-reward-node`."""
    return run_node("robot-rl-reward-node", RewardNode, argv)


if __name__ == "__main__":
    sys.exit(main())
