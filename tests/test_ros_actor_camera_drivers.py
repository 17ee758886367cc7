"""The actor fed by a camera driver's own topics, not our camera node: this test process plays `usb_cam`.

usb_cam's defaults (ros-drivers/usb_cam, pixel_format yuyv): `image_raw` 640x480 `yuv422_yuy2` (step 1280) and
`camera_info`, relative to its namespace; it publishes them reliable, depth 100 — here best effort, the sensor-data
QoS a driver may also use (the actor's best-effort subscription takes either). The actor (pixels, one camera,
16 px) is remapped onto them as docs/hardware.md says. Its episodes must hold 16x16 images of the centred 480x480
square (the frame's red and blue side bands cropped away), and `actor_status` must report the driver's size, the
crop and K carried through crop and resize; a depth image wired in by mistake is refused and counted, and the
actor keeps running. Run inside a private network namespace (`./run.sh test`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosgraph_msgs.msg import Clock
from rosprocs import Probe  # noqa: E402
from rosprocs import start_process as _start
from rosprocs import stop_process as _stop
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String, UInt8MultiArray

from robot_rl import keys
from robot_rl.ros import convert, protocol, topics

pytestmark = pytest.mark.ros

NS = f"/actor_usbcam_{os.getpid()}"
PX, STEPS = 16, 10
K_DRIVER = [520.0, 0.0, 322.0, 0.0, 520.0, 241.0, 0.0, 0.0, 1.0]
BIN = Path(sys.executable).parent


def _make_frame() -> np.ndarray:
    """640x480 RGB: a red band (x < 80), a green ramp across the centred square, a blue band (x >= 560)."""
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :80, 0] = 255
    rgb[:, 560:, 2] = 255
    rgb[:, 80:560, 1] = np.linspace(40, 220, 480).astype(np.uint8)
    return rgb


class _UsbCam(Probe):
    """Publishes image_raw (yuv422_yuy2) + camera_info at 10 Hz of sim time; hears episodes and actor_status."""

    def __init__(self, rgb: np.ndarray):
        super().__init__("usb_cam", namespace=NS)
        yuyv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2)  # (480, 640, 2): Y0 U Y1 V
        self.image = Image(
            height=480, width=640, encoding="yuv422_yuy2", is_bigendian=0, step=1280, data=yuyv.tobytes()
        )
        self.image.header.frame_id = "camera"
        self.info = CameraInfo(
            width=640,
            height=480,
            distortion_model="plumb_bob",
            d=[0.0] * 5,
            k=K_DRIVER,
            r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
            p=K_DRIVER[:3] + [0.0] + K_DRIVER[3:6] + [0.0] + K_DRIVER[6:] + [0.0],
        )
        self.info.header.frame_id = "camera"
        self.pub_image = self.node.create_publisher(Image, "image_raw", topics.SENSOR_QOS)
        self.pub_info = self.node.create_publisher(CameraInfo, "camera_info", topics.SENSOR_QOS)
        self.node.create_subscription(Clock, f"{NS}/clock", self._on_clock, topics.CLOCK_QOS)
        self.episodes: list[dict] = []
        self.status: dict = {}
        self.node.create_subscription(
            UInt8MultiArray,
            protocol.EPISODES,
            lambda m: self.episodes.append(protocol.episode_from_msg(m)[0]),
            protocol.EPISODES_QOS,
        )
        self.node.create_subscription(
            String, f"{NS}/actor_status", lambda m: setattr(self, "status", json.loads(m.data)), protocol.LATCHED_QOS
        )
        self._last_t = -1.0

    def _on_clock(self, msg: Clock) -> None:
        t = convert.seconds_from_stamp(msg.clock)
        if t - self._last_t >= 0.1 - 1e-9:
            stamp = convert.stamp_from_seconds(t)
            self.image.header.stamp = self.info.header.stamp = stamp
            self.pub_image.publish(self.image)
            self.pub_info.publish(self.info)
            self._last_t = t


def test_the_actor_takes_usb_cam_yuyv_640x480_and_observes_the_centred_square_at_its_own_size(tmp_path):
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    sim_log, actor_log, store = tmp_path / "sim.log", tmp_path / "actor.log", tmp_path / "store"
    sim = _start(
        [str(BIN / "robot-rl-sim-node"), *ros, "-p", "real_time_factor:=2.0", "-p", "camera_rate_hz:=0.0"], sim_log
    )
    actor = _start(
        [
            str(BIN / "robot-rl-actor-node"),
            *ros,
            "-r",
            "front/image_raw:=image_raw",
            "-r",
            "front/camera_info:=camera_info",
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
            "max_staleness_s:=0.5",
            "-p",
            f"store:={store}",
        ],
        actor_log,
    )
    rgb = _make_frame()
    cam = _UsbCam(rgb)
    log = lambda: actor_log.read_text()  # noqa: E731
    try:
        assert cam.spin_until(lambda: cam.episodes or actor.poll() is not None, 45.0), (
            log()[-3000:] + sim_log.read_text()
        )
        images = cam.episodes[0][keys.image_key("front")]
        assert images.shape == (STEPS, PX, PX, 3), images.shape
        expected = cv2.resize(rgb[:, 80:560], (PX, PX), interpolation=cv2.INTER_AREA)  # the centred square, 30x smaller
        error = np.abs(images.astype(int) - expected[None].astype(int))
        assert error.max() <= 6, error.max()  # YUV 4:2:2 round trip of a smooth ramp
        assert images[..., 0].max() <= 6 and images[..., 2].max() <= 6  # the side bands are cropped away
        assert cam.spin_until(lambda: "K" in cam.status.get("cameras", {}).get("front", {}), 5.0), cam.status
        front = cam.status["cameras"]["front"]
        s = PX / 480
        assert front["source_size"] == [640, 480] and front["crop"] == [80, 0, 480, 480] and front["size"] == [PX, PX]
        assert front["K"] == pytest.approx(
            [520 * s, 0, (322 - 80 + 0.5) * s - 0.5, 0, 520 * s, 241.5 * s - 0.5, 0, 0, 1]
        )
        assert not cam.status["refused"], cam.status["refused"]
        cam.image = Image(height=480, width=640, encoding="16UC1", step=1280, data=bytes(480 * 1280))  # a depth
        # topic wired in by mistake: each image refused and counted, one log line per 5 s, the node keeps going
        assert cam.spin_until(lambda: cam.status["refused"].get("front/image_raw", 0) >= 3, 10.0), cam.status
        assert log().count("refused a message on front/image_raw") == 1 and "not colour" in log()
        assert actor.poll() is None
    finally:
        cam.close()
        actor_rc, sim_rc = _stop(actor), _stop(sim)
    assert actor_rc == 0 and sim_rc == 0, log()[-3000:]
