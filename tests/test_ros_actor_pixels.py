"""The actor in pixels mode, with this test process as its camera: images stop -> the episode pauses, once.

The sim node publishes no images (camera_rate_hz 0); the test publishes `front/image_raw` itself,
stamped with the sim clock, stops for a while mid-episode, then starts again. The actor (random
warm-up actions, sim time) must hold the arm while the image is stale, say so in one log line that
names the topic and its age, and resume when images return. Run inside a private network namespace.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from rosprocs import Probe  # noqa: E402
from rosprocs import start_process as _start
from rosprocs import stop_process as _stop
from sensor_msgs.msg import Image
from std_msgs.msg import UInt8MultiArray

from robot_rl import keys
from robot_rl.data.store import EpisodeStore
from robot_rl.interfaces import Frame
from robot_rl.ros import convert, protocol, topics

pytestmark = pytest.mark.ros

NS = f"/actor_px_{os.getpid()}"
PX, STEPS, STALE_S = 16, 40, 0.5  # staleness: 5 camera periods, so this test's own jitter never trips it
BIN = Path(sys.executable).parent


class _Camera(Probe):
    """Publishes front/image_raw stamped with the sim clock while `on`; watches commands and episodes."""

    def __init__(self):
        super().__init__("fake_camera")
        self.sim_t = 0.0
        self.on = True
        self.twists: list[tuple[float, float]] = []  # (sim time heard, |linear velocity|)
        self.episodes: list[dict] = []
        deep = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Clock, f"{NS}/clock", self._on_clock, topics.CLOCK_QOS)
        self.node.create_subscription(
            TwistStamped,
            f"{NS}/{topics.EE_COMMAND}",
            lambda m: self.twists.append(
                (self.sim_t, float(np.linalg.norm([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z])))
            ),
            deep,
        )
        self.node.create_subscription(
            UInt8MultiArray,
            protocol.EPISODES,
            lambda m: self.episodes.append(protocol.episode_from_msg(m)[0]),
            protocol.EPISODES_QOS,
        )
        self.pub = self.node.create_publisher(Image, f"{NS}/{topics.image_topic('front')}", topics.SENSOR_QOS)
        self.rng = np.random.default_rng(0)
        self._last_image_t = -1.0

    def _on_clock(self, msg: Clock) -> None:
        self.sim_t = convert.seconds_from_stamp(msg.clock)
        if self.on and self.sim_t - self._last_image_t >= 0.1 - 1e-9:  # 10 Hz in sim time
            image = self.rng.integers(0, 255, (PX, PX, 3), dtype=np.uint8)
            self.pub.publish(convert.image_msg(Frame(image, self.sim_t), "front_optical_frame"))
            self._last_image_t = self.sim_t


def test_a_stale_camera_pauses_the_episode_with_one_log_line_and_images_returning_resume_it(tmp_path):
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim_log, actor_log, store = tmp_path / "sim.log", tmp_path / "actor.log", tmp_path / "store"
    sim = _start(
        [str(BIN / "robot-rl-sim-node"), *ros, "-p", "real_time_factor:=2.0", "-p", "camera_rate_hz:=0.0"], sim_log
    )
    actor = _start(
        [
            str(BIN / "robot-rl-actor-node"),
            *ros,
            "-p",
            "use_sim_time:=true",
            "-p",
            "obs_mode:=pixels",
            "-p",
            "cameras:=[front]",
            "-p",
            f"image_size:={PX}",
            "-p",
            "warmup:=random",
            "-p",
            f"max_episode_steps:={STEPS}",
            "-p",
            f"max_staleness_s:={STALE_S}",
            "-p",
            f"store:={store}",
        ],
        actor_log,
    )
    cam = _Camera()
    log = lambda: actor_log.read_text()  # noqa: E731
    try:
        # a first episode runs to its time limit with our images in it
        assert cam.spin_until(lambda: cam.episodes or actor.poll() is not None, 45.0), (
            log()[-3000:] + sim_log.read_text()
        )
        episode = cam.episodes[0]
        assert episode[keys.image_key("front")].shape == (STEPS, PX, PX, 3)
        lag_s = episode[keys.T_CAPTURE] - episode[keys.t_capture_key("front")]
        assert np.abs(lag_s).max() <= STALE_S, lag_s  # the freshest image of each step, within the staleness limit
        # mid-way through the next episode the camera stops
        assert cam.spin_until(lambda: cam.twists and cam.twists[-1][1] > 0.0, 10.0)
        cam.spin_until(lambda: False, 0.5)
        cam.on, t_off, log_at_stop = False, cam.sim_t, len(log())
        assert cam.spin_until(lambda: "pausing episode" in log(), 10.0), log()[-3000:]
        cam.spin_until(lambda: False, 1.5)  # paused for a while: 3 s of sim time
        held = [v for t, v in cam.twists if t > t_off + STALE_S + 0.25]
        assert len(held) > 10 and max(held) == 0.0, "the arm was commanded to move while the camera was stale"
        pauses = [line for line in log()[log_at_stop:].splitlines() if "pausing episode" in line]
        assert len(pauses) == 1 and re.search(r"front/image_raw is 0\.[5-7]\d\d s old", pauses[0]), (
            pauses
        )  # one line: topic, age
        cam.on = True
        assert cam.spin_until(lambda: "resuming episode" in log(), 10.0), log()[-3000:]
        assert cam.spin_until(lambda: len(cam.episodes) >= 2, 30.0), log()[-3000:]
        gaps = np.diff(cam.episodes[1][keys.T_CAPTURE])
        assert gaps.max() > 1.0 and np.median(gaps) == pytest.approx(0.1, abs=0.021)  # one step spans the pause
        assert len(cam.episodes[1][keys.ACTION]) == STEPS  # paused ticks are not steps
    finally:
        cam.close()
        actor_rc, sim_rc = _stop(actor), _stop(sim)
    assert actor_rc == 0 and sim_rc == 0, log()[-3000:]
    assert EpisodeStore.open(store, verify=True).n_episodes >= 2
