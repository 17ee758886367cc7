"""Camera drivers without ROS: crop/resize intrinsics, camera_info YAML, the video-file UVC adapter, the grabber.

Videos are written here with cv2.VideoWriter (FFV1, lossless): frame i is colour `palette(i)` right of a
black stripe, so a frame's index can be read back from its mean colour.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from contracts import check_camera_contract

from robot_rl.interfaces import Camera, CameraSpec, Frame
from robot_rl_drivers.camera_errors import CameraError, EndOfStream
from robot_rl_drivers.camera_geometry import CameraCalibration, CropResize, nominal_calibration
from robot_rl_drivers.camera_grabber import FrameGrabber
from robot_rl_drivers.camera_info_yaml import load_camera_info_yaml
from robot_rl_drivers.camera_uvc import UvcCamera

STRIPE_PX = 20  # black stripe at the left of every video frame


def palette(i: int) -> tuple[int, int, int]:
    """RGB colour of video frame i (distinct for i < 45)."""
    return 20 + 5 * i, 230 - 4 * i, 60 + 3 * i


def frame_index(rgb_mean: np.ndarray, n_frames: int) -> tuple[int, float]:
    """(index of the palette colour nearest to `rgb_mean`, its distance)."""
    dist = [float(np.abs(np.asarray(palette(i)) - rgb_mean).max()) for i in range(n_frames)]
    return int(np.argmin(dist)), min(dist)


def write_video(path: Path, n_frames: int, fps: float, width: int = 160, height: int = 120) -> Path:
    """A lossless AVI of `n_frames` frames; written to a temporary name and renamed, so it appears complete."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    assert writer.isOpened(), "cv2 cannot write FFV1 video here"
    for i in range(n_frames):
        rgb = np.zeros((height, width, 3), np.uint8)
        rgb[:, STRIPE_PX:] = palette(i)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(tmp, path)
    return path


# --- intrinsics through crop and resize -------------------------------------------------------------
def _blobs(width: int, height: int, centres: np.ndarray, sigma_px: float) -> np.ndarray:
    """uint8 (H, W, 3) image of Gaussian blobs at sub-pixel `centres` (N, 2), pixel centres at integers."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    img = sum(np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * sigma_px**2)) for cu, cv in centres)
    return np.repeat(np.round(255 * img)[:, :, None], 3, axis=2).astype(np.uint8)


def _centroid(img: np.ndarray, near: np.ndarray, radius_px: int) -> np.ndarray:
    g = img[:, :, 0].astype(np.float64)
    x0, y0 = int(round(near[0])), int(round(near[1]))
    win = g[y0 - radius_px : y0 + radius_px + 1, x0 - radius_px : x0 + radius_px + 1]
    v, u = np.mgrid[y0 - radius_px : y0 + radius_px + 1, x0 - radius_px : x0 + radius_px + 1]
    return np.array([(win * u).sum() / win.sum(), (win * v).sum() / win.sum()])


@pytest.mark.parametrize(
    "crop, out_size",
    [
        ((37, 21, 240, 180), (60, 45)),
        ((40, 30, 200, 150), (90, 60)),
        ((30, 20, 100, 80), (250, 200)),
        ((17, 9, 201, 151), (0, 0)),
    ],
)
def test_a_scene_point_lands_where_the_cropped_and_resized_intrinsics_project_it(crop, out_size):
    K = np.array([[300.0, 0.0, 161.3], [0.0, 280.0, 118.7], [0.0, 0.0, 1.0]])
    calib = CameraCalibration(320, 240, tuple(K.ravel()), D=(0.1, -0.2, 0.0, 0.0, 0.05))
    x, y, cw, ch = crop
    pix = np.array([[x + 0.3 * cw, y + 0.35 * ch], [x + 0.7 * cw, y + 0.65 * ch]])  # inside the crop, well apart
    depth_m = np.array([[1.0], [1.4]])
    points = np.linalg.solve(K, np.c_[pix, np.ones(2)].T).T * depth_m  # the scene points seen there (camera frame, m)
    op = CropResize(*crop, *out_size)
    image = op.image(_blobs(320, 240, pix, sigma_px=6.0))
    out = op.calibration(calib)
    w, h = out_size if out_size != (0, 0) else crop[2:]
    assert image.shape == (h, w, 3) and (out.width, out.height) == (w, h)
    K2 = np.asarray(out.K).reshape(3, 3)
    expected = (K2 @ points.T).T
    expected = expected[:, :2] / expected[:, 2:]
    s = w / crop[2]
    radius = max(4, int(round(18 * s)))
    measured = np.array([_centroid(image, e, radius) for e in expected])
    assert np.abs(measured - expected).max() < 0.08, (measured, expected)
    if s != 1.0:  # image_proc's c' = (c - o) * s would miss by (1 - s) / 2 px: the test tells the two apart
        naive_cx = (K[0, 2] - crop[0]) * s
        assert abs(naive_cx - K2[0, 2]) > 0.1
    P = np.asarray(out.P).reshape(3, 4)
    assert np.allclose(P[:, :3], K2) and np.allclose(P[:, 3], 0) and out.D == calib.D


def test_a_crop_box_that_does_not_fit_is_refused_naming_the_capture_size():
    with pytest.raises(ValueError, match=r"does not fit in the 320x240 capture"):
        CropResize(300, 0, 40, 100).image(np.zeros((240, 320, 3), np.uint8))
    assert CropResize().out_size(320, 240) == (320, 240)
    nominal = nominal_calibration(640, 480, hfov_deg=90.0)
    assert nominal.K[0] == pytest.approx(320.0) and nominal.K[2] == 319.5 and nominal.K[5] == 239.5


CAMERA_INFO_YAML = """\
image_width: 160
image_height: 120
camera_name: front
camera_matrix:
  rows: 3
  cols: 3
  data: [200.0, 0.0, 79.5, 0.0, 210.0, 59.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.02, 0.001, -0.002, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [198.0, 0.0, 80.0, 0.0, 0.0, 207.0, 60.0, 0.0, 0.0, 0.0, 1.0, 0.0]
robot_rl_calibration_version: 1
"""


def test_camera_info_yaml_is_read_from_a_path_or_file_url_and_bad_files_are_named(tmp_path):
    path = tmp_path / "front.yaml"
    path.write_text(CAMERA_INFO_YAML)
    for source in (path, f"file://{path}"):
        calib = load_camera_info_yaml(source)
        assert (calib.width, calib.height, calib.camera_name) == (160, 120, "front")
        assert calib.K == (200.0, 0.0, 79.5, 0.0, 210.0, 59.5, 0.0, 0.0, 1.0)
        assert calib.D == (-0.1, 0.02, 0.001, -0.002, 0.0) and calib.P[0] == 198.0 and calib.P[6] == 60.0
    minimal = tmp_path / "minimal.yaml"
    minimal.write_text(
        "image_width: 64\nimage_height: 48\ncamera_matrix: {rows: 3, cols: 3, data: [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1]}\n"
    )
    calib = load_camera_info_yaml(minimal)
    assert calib.P == (50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0) and calib.D == (0.0,) * 5
    broken = tmp_path / "broken.yaml"
    broken.write_text(CAMERA_INFO_YAML.replace("camera_matrix:", "camera_matrx:"))
    with pytest.raises(ValueError, match=r"broken.yaml needs \['image_width', 'image_height', 'camera_matrix'\]"):
        load_camera_info_yaml(broken)
    short = tmp_path / "short.yaml"
    short.write_text(CAMERA_INFO_YAML.replace("data: [200.0, 0.0, 79.5, ", "data: [200.0, "))
    with pytest.raises(ValueError, match=r"camera_matrix must be a mapping with rows: 3, cols: 3 and 9 numbers"):
        load_camera_info_yaml(short)
    with pytest.raises(ValueError, match=r"does not exist"):
        load_camera_info_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match=r"only file:// URLs"):
        load_camera_info_yaml("package://robot_rl/front.yaml")


# --- the UVC adapter on a video file ------------------------------------------------------------------
def test_a_video_file_plays_as_rgb_frames_at_its_frame_rate_then_ends_or_loops(tmp_path):
    video = write_video(tmp_path / "clip.avi", n_frames=12, fps=40.0)
    camera = UvcCamera(str(video), name="front")
    assert (camera.spec.width, camera.spec.height, camera.spec.rate_hz) == (160, 120, 40.0)
    assert camera.spec.frame_id == "front_optical_frame" and camera.calibration.K[2] == 79.5
    start = time.monotonic()
    frames = [camera.read() for _ in range(12)]
    elapsed_s = time.monotonic() - start
    assert 0.9 * 11 / 40 <= elapsed_s < 11 / 40 + 0.15, f"12 frames at 40 fps took {elapsed_s:.3f} s"
    for i, frame in enumerate(frames):
        assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
        assert tuple(frame.image[60, 100]) == palette(i) and frame.image[:, :STRIPE_PX].max() == 0  # RGB, not BGR
    assert np.all(np.diff([f.t_capture for f in frames]) > 0)
    with pytest.raises(EndOfStream, match="clip.avi ended"):
        camera.read()
    camera.close()

    looping = UvcCamera(str(video), loop=True, fps=200.0)  # fps overrides the file's rate
    indices = [frame_index(looping.read().image[60, 100], 12)[0] for _ in range(15)]
    looping.close()
    assert indices == list(range(12)) + [0, 1, 2]


def test_the_video_file_adapter_passes_the_camera_contract(tmp_path):
    video = write_video(tmp_path / "clip.avi", n_frames=5, fps=30.0)
    check_camera_contract(lambda: UvcCamera(str(video), name="front"), advance=time.sleep)


def test_a_missing_video_file_is_a_camera_error_naming_it(tmp_path):
    with pytest.raises(CameraError, match=r"video file .*absent.avi does not exist"):
        UvcCamera(str(tmp_path / "absent.avi"))


@pytest.mark.skipif(importlib.util.find_spec("pyrealsense2") is not None, reason="pyrealsense2 is installed here")
def test_the_realsense_adapter_without_pyrealsense2_says_how_to_install_it():
    from robot_rl_drivers.camera_realsense import RealSenseCamera

    with pytest.raises(ImportError, match=r"pip install pyrealsense2"):
        RealSenseCamera(name="wrist")


# --- the grabber ---------------------------------------------------------------------------------------
class _FailingCamera(Camera):
    """Fault injection (a real device fault cannot be produced here): a real video-file camera that raises
    CameraError after `good` frames, as an unplugged USB camera does."""

    def __init__(self, video: Path, good: int):
        self._inner, self._left = UvcCamera(str(video), fps=100.0), good
        self.spec: CameraSpec = self._inner.spec

    def read(self) -> Frame:
        if self._left == 0:
            raise CameraError("device delivered no frame")
        self._left -= 1
        return self._inner.read()

    def close(self) -> None:
        self._inner.close()


def test_the_grabber_reopens_a_failing_camera_at_most_once_per_interval_and_never_repeats_a_frame(tmp_path):
    video = tmp_path / "late.avi"
    logs: list[tuple[str, str]] = []
    lock = threading.Lock()

    def log(level: str, message: str) -> None:
        with lock:
            logs.append((level, message))

    def open_camera() -> Camera:
        if not video.exists():
            return UvcCamera(str(video))  # raises CameraError: the file is not there yet
        return _FailingCamera(video, good=3)

    grabber = FrameGrabber(open_camera, reopen_interval_s=0.2, log=log, name="front").start()
    seen = []
    try:
        time.sleep(0.9)  # no file: about 0.9 / 0.2 + 1 = 5 attempts, never more
        attempts_missing = grabber.open_attempts
        assert 2 <= attempts_missing <= 6, attempts_missing
        assert grabber.latest() == (0, None)
        write_video(video, n_frames=10, fps=100.0)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            seq, frame = grabber.latest()
            if frame is not None and (not seen or seen[-1][0] != seq):
                seen.append((seq, frame))
            time.sleep(0.002)
    finally:
        grabber.stop()
    # each opening gives 3 frames (indices 0, 1, 2 of the file) then fails; reopened every 0.2 s at most
    failed = sum("retrying in 0.2 s" in m for _, m in logs)
    opened = sum(": opened 160x120 @ 100 fps" in m for _, m in logs)
    assert failed + opened == grabber.open_attempts and failed in (attempts_missing, attempts_missing + 1)
    assert 3 <= opened <= 1.5 / 0.2 + 1 and grabber.faults in (opened - 1, opened), (opened, grabber.faults)
    assert [s for s, _ in seen] == sorted({s for s, _ in seen}), "a sequence number was handed out twice"
    assert {frame_index(f.image[60, 100], 10)[0] for _, f in seen} == {0, 1, 2}
    assert sum("device delivered no frame; closing it and reopening" in m for _, m in logs) == grabber.faults
    assert not grabber.ended and not grabber.fatal and not grabber.running
