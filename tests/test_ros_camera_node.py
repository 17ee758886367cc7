"""The camera node as a real process over real DDS, playing video files written here.

Two nodes serve the file: `front` loops a 1.5 s clip, cropped and resized, with intrinsics from a
camera_info YAML; `side` is pointed at a file that does not exist yet (a camera not plugged in), which
the test writes later, and does not loop. A probe node in the test process listens. Frame i of a clip
has colour `palette(i)`, so each image says which frame it is. Run inside a private network namespace
(`./run.sh test`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosprocs import Probe, start_process, stop_process
from sensor_msgs.msg import CameraInfo, Image
from test_camera_adapters import CAMERA_INFO_YAML, frame_index, write_video

from robot_rl.ros import convert, topics

pytestmark = pytest.mark.ros

NS = f"/camera_test_{os.getpid()}"
NODE = str(Path(sys.executable).parent / "robot-rl-camera-node")
FPS, N_LOOP, N_LATE, RATE_HZ, REOPEN_S = 30.0, 45, 30, 10.0, 0.3
CROP, OUT_W, OUT_H = (40, 20, 100, 80), 50, 40  # crop 100x80 at (40, 20) of the 160x120 clip, then halve it


def _node_cmd(name: str, camera: str, **params) -> list[str]:
    cmd = [NODE, "--ros-args", "-r", f"__ns:={NS}", "-r", f"__node:={name}", "-p", f"camera:={camera}"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return cmd


@pytest.fixture(scope="module")
def cameras(tmp_path_factory):
    d = tmp_path_factory.mktemp("camera_node")
    clip = write_video(d / "loop.avi", N_LOOP, FPS)
    calib = d / "front.yaml"
    calib.write_text(CAMERA_INFO_YAML)
    late = d / "late.avi"
    t_start = time.monotonic()
    front = start_process(
        _node_cmd(
            "front_camera",
            "front",
            source=clip,
            loop="true",
            rate_hz=RATE_HZ,
            crop=f"[{','.join(map(str, CROP))}]",
            width=OUT_W,
            height=OUT_H,
            camera_info_url=f"file://{calib}",
        ),
        d / "front.log",
    )
    side = start_process(
        _node_cmd("side_camera", "side", source=late, loop="false", rate_hz=RATE_HZ, reopen_interval_s=REOPEN_S),
        d / "side.log",
    )
    probe = Probe("camera_probe")
    for topic, msg_type in [
        (topics.image_topic("front"), Image),
        (topics.camera_info_topic("front"), CameraInfo),
        (topics.image_topic("side"), Image),
    ]:
        probe.record(f"{NS}/{topic}", msg_type, topics.SENSOR_QOS, clock=time.time)  # latency vs stamps
    up = probe.spin_until(lambda: probe.heard[f"{NS}/front/image_raw"] or front.poll() is not None, timeout_s=45.0)
    assert up and front.poll() is None, f"front camera node did not come up:\n{(d / 'front.log').read_text()}"
    yield {"probe": probe, "dir": d, "late": late, "side": side, "t_start": t_start}
    try:
        codes = {name: stop_process(proc) for name, proc in (("front", front), ("side", side))}
    finally:
        probe.close()
    assert codes == {"front": 0, "side": 0}, f"exit codes on SIGINT {codes}:\n{(d / 'front.log').read_text()}"


def test_a_looping_clip_is_published_cropped_resized_at_the_set_rate_with_capture_stamps_and_adjusted_intrinsics(
    cameras,
):
    probe = cameras["probe"]
    probe.spin_for(0.3)
    probe.heard.clear()
    window_s = 3.0
    probe.spin_for(window_s)
    images = probe.heard[f"{NS}/front/image_raw"]
    infos = [m for _, m in probe.heard[f"{NS}/front/camera_info"]]
    assert (1 - 0.2) * RATE_HZ * window_s <= len(images) <= (1 + 0.2) * RATE_HZ * window_s, len(images)

    stamps = np.array([convert.seconds_from_stamp(m.header.stamp) for _, m in images])
    arrivals = np.array([t for t, _ in images])
    assert np.all(np.diff(stamps) > 0)
    assert np.median(np.diff(stamps)) == pytest.approx(1 / RATE_HZ, abs=0.02)
    latency_s = arrivals - stamps  # stamp = capture time on the ROS (system) clock, just before it was sent
    assert np.all(latency_s > 0) and np.median(latency_s) < 0.1, latency_s

    indices = []
    for _, msg in images:
        assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (
            OUT_W,
            OUT_H,
            "rgb8",
            "front_optical_frame",
        )
        image = convert.frame_from_image(msg).image
        assert image.std(axis=(0, 1)).max() < 1.0, "the black stripe left of x=20 must be cropped away"
        index, dist = frame_index(image.reshape(-1, 3).mean(axis=0), N_LOOP)
        assert dist <= 1.0, f"image colour {image[0, 0]} is no frame of the clip"
        indices.append(index)
    steps = np.diff(indices) % N_LOOP  # 30 fps clip, 10 Hz node: about 3 frames on per image, never 0 (stale)
    assert np.median(steps) == 3 and steps.min() >= 1 and steps.max() <= 9, indices
    assert np.any(np.diff(indices) < 0), f"the 1.5 s clip did not wrap around in {window_s} s: {indices}"

    info = infos[-1]
    assert (info.width, info.height, info.header.frame_id) == (OUT_W, OUT_H, "front_optical_frame")
    # K of front.yaml (fx 200, fy 210, cx 79.5, cy 59.5 at 160x120) through the crop at (40, 20) and the halving:
    # f * 0.5, (c - offset + 0.5) * 0.5 - 0.5
    assert np.allclose(info.k, [100.0, 0.0, 19.5, 0.0, 105.0, 19.5, 0.0, 0.0, 1.0])
    assert np.allclose(info.p, [99.0, 0.0, 19.75, 0.0, 0.0, 103.5, 19.75, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert np.allclose(info.d, [-0.1, 0.02, 0.001, -0.002, 0.0]) and info.distortion_model == "plumb_bob"
    info_stamps = [convert.seconds_from_stamp(m.header.stamp) for m in infos]
    assert (
        np.isin(info_stamps, stamps).mean() >= 0.9
    )  # each info carries its image's stamp (best effort: a few may miss)


def test_a_missing_camera_is_retried_at_the_reopen_interval_and_a_finished_clip_stops_publishing(cameras):
    probe, late, side = cameras["probe"], cameras["late"], cameras["side"]
    log = cameras["dir"] / "side.log"
    probe.spin_for(1.0)
    retries = log.read_text().count(f"retrying in {REOPEN_S:g} s")
    elapsed_s = time.monotonic() - cameras["t_start"]
    assert 2 <= retries <= elapsed_s / REOPEN_S + 1, (retries, elapsed_s, log.read_text())
    assert probe.heard[f"{NS}/side/image_raw"] == [] and side.poll() is None

    write_video(late, N_LATE, FPS)  # the camera appears: 1 s of frames, then the end of the file
    ended = probe.spin_until(lambda: "stopped publishing" in log.read_text(), timeout_s=15.0)
    assert ended, log.read_text()
    probe.spin_for(0.3)
    images = [m for _, m in probe.heard[f"{NS}/side/image_raw"]]
    assert 0.8 * RATE_HZ * N_LATE / FPS <= len(images) <= 1.2 * RATE_HZ * N_LATE / FPS + 1, len(images)
    indices = [frame_index(convert.frame_from_image(m).image[60, 100], N_LATE)[0] for m in images]
    assert indices[0] <= 3 and indices[-1] >= N_LATE - 4 and np.all(np.diff(indices) > 0), indices
    assert (images[0].width, images[0].height) == (160, 120)  # no crop, no resize

    probe.heard[f"{NS}/side/image_raw"].clear()
    probe.spin_for(1.0)
    assert probe.heard[f"{NS}/side/image_raw"] == [], "published after the clip ended"
    text = log.read_text()
    assert "late.avi ended; no more frames" in text and f"stopped publishing after {len(images)} images" in text
    assert side.poll() is None  # still up, publishing nothing: the actor sees stale images and pauses


def test_help_lists_the_parameters_and_bad_settings_exit_2_saying_what_is_wrong(cameras):
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    out = subprocess.run([NODE, "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "camera_info_url" in out.stdout and "crop " in out.stdout, out.stderr

    out = subprocess.run(
        _node_cmd("bad_driver", "front", driver="gige"), capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 2 and "driver 'gige' is not known; choose one of ['uvc', 'realsense']" in out.stderr

    if importlib.util.find_spec("pyrealsense2") is None:  # a serial number parses as an integer: still a source
        out = subprocess.run(
            _node_cmd("no_realsense", "wrist", driver="realsense", source=123622270883),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 2 and "run `pip install pyrealsense2`" in out.stderr, out.stderr

    big = cameras["dir"] / "big.yaml"
    big.write_text(
        CAMERA_INFO_YAML.replace("image_width: 160", "image_width: 320").replace(
            "image_height: 120", "image_height: 240"
        )
    )
    out = subprocess.run(
        _node_cmd("bad_calib", "front", source=cameras["dir"] / "loop.avi", camera_info_url=big),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "is for 320x240 images but the camera delivers 160x120" in out.stderr


def test_the_hardware_cameras_setup_sets_only_camera_node_parameters_with_crops_that_fit_their_capture():
    from robot_rl.nodes.table import load_table
    from robot_rl_drivers.camera_node import CameraNodeConfig

    table = load_table("hw_cameras")
    assert table.select(use_sim=True) == () and [n.fqn for n in table.select(use_sim=False)] == [
        "/front_camera",
        "/wrist_camera",
    ]
    fields = set(CameraNodeConfig.__dataclass_fields__)
    for node in table.nodes:
        overrides = dict(node.overrides)
        assert set(overrides) <= fields, set(overrides) - fields
        cfg = CameraNodeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
        cfg.validate()
        assert cfg.crop_resize().out_size(cfg.capture_width, cfg.capture_height) == (128, 128)
