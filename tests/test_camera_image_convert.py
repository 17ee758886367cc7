"""Camera images as drivers publish them (robot_rl.ros.image_convert): every colour encoding, padded rows, refusals,
the actor's centred crop and resize, and the intrinsics that follow. Bytes are made from a known RGB image with
OpenCV's inverse conversions; the actor's per-camera handling (actor_inputs.CameraInputs) is checked on real
sensor_msgs messages (no DDS)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robot_rl.acting.config import ActorConfig
from robot_rl.ros.image_convert import COLOUR_ENCODINGS, ImageError, ImageFit, to_rgb
from robot_rl_drivers.camera_geometry import CameraCalibration, CropResize, centred_crop

H, W = 48, 64
# encoding -> OpenCV's conversion from RGB to it (None: the bytes are the RGB image itself)
ENCODE = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA,
    "yuv422_yuy2": cv2.COLOR_RGB2YUV_YUY2,
    "yuyv": cv2.COLOR_RGB2YUV_YUY2,
    "yuv422": cv2.COLOR_RGB2YUV_UYVY,
    "uyvy": cv2.COLOR_RGB2YUV_UYVY,
}
TOLERANCE = {"yuv422_yuy2": 4, "yuyv": 4, "yuv422": 4, "uyvy": 4}  # 8-bit YUV round trip; the rest is exact


def _make_rgb(h: int = H, w: int = W) -> np.ndarray:
    """A smooth colour image (chroma changes slowly, so 4:2:2 subsampling costs little): (h, w, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4, yy * 5, 255 - 2 * xx - yy], axis=-1).clip(0, 255).astype(np.uint8)


def _encode(rgb: np.ndarray, encoding: str, pad_bytes: int = 0) -> tuple[int, bytes]:
    """-> (step, data) of `rgb` in `encoding`, each row followed by `pad_bytes` bytes of 0xEE (a driver's padding)."""
    code = ENCODE[encoding]
    pixels = rgb if code is None else cv2.cvtColor(rgb, code)
    rows = pixels.reshape(rgb.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad_bytes), 0xEE, np.uint8)], axis=1)
    return padded.shape[1], padded.tobytes()


def test_every_colour_encoding_is_covered_by_these_tests():
    assert set(ENCODE) | {"mono8"} == set(COLOUR_ENCODINGS)


@pytest.mark.parametrize("pad_bytes", [0, 13])
@pytest.mark.parametrize("encoding", sorted(ENCODE))
def test_each_encoding_decodes_to_the_rgb_image_it_was_made_from_with_or_without_row_padding(encoding, pad_bytes):
    rgb = _make_rgb()
    step, data = _encode(rgb, encoding, pad_bytes)
    out = to_rgb(encoding, W, H, step, data)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.writeable
    error = np.abs(out.astype(int) - rgb.astype(int))
    assert error.max() <= TOLERANCE.get(encoding, 0), (encoding, error.max())


def test_yuyv_and_uyvy_are_told_apart_and_mono8_fills_all_three_channels():
    rgb = _make_rgb()
    step, yuyv = _encode(rgb, "yuv422_yuy2")
    wrong = to_rgb("yuv422", W, H, step, yuyv)  # YUYV bytes read as UYVY: far off
    assert np.abs(wrong.astype(int) - rgb.astype(int)).mean() > 30
    grey = rgb[:, :, 1].copy()
    out = to_rgb("mono8", W, H, W + 3, np.pad(grey, ((0, 0), (0, 3))).tobytes())
    assert np.array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize(
    "encoding, width, height, step, n_bytes, complaint",
    [
        ("16UC1", 4, 2, 8, 16, "depth or 16/32-bit, not colour"),  # realsense depth/image_rect_raw
        ("32FC1", 4, 2, 16, 32, "depth or 16/32-bit, not colour"),
        ("mono16", 4, 2, 8, 16, "depth or 16/32-bit, not colour"),
        ("jpeg", 4, 2, 12, 24, "'jpeg' is not supported; send one of"),
        ("rgb8", 4, 2, 12, 23, "needs 24 bytes"),  # a byte short
        ("rgb8", 4, 2, 10, 20, r"step >= 12"),  # a step shorter than a row
        ("bgr8", 0, 2, 0, 0, "needs 0 bytes"),  # an empty image
        ("yuv422_yuy2", 3, 2, 6, 12, "width must be even"),
    ],
)
def test_an_unusable_image_is_refused_saying_what_is_wrong(encoding, width, height, step, n_bytes, complaint):
    with pytest.raises(ImageError, match=complaint):
        to_rgb(encoding, width, height, step, bytes(n_bytes))


@pytest.mark.parametrize(
    "size_in, size_out, box",
    [
        ((640, 480), (128, 128), (80, 0, 480, 480)),  # usb_cam / realsense default -> square observation
        ((480, 640), (128, 128), (0, 80, 480, 480)),  # portrait
        ((1280, 720), (160, 120), (160, 0, 960, 720)),  # 16:9 -> 4:3
        ((128, 128), (128, 128), (0, 0, 128, 128)),  # already the observation's size: unchanged
    ],
)
def test_the_centred_crop_is_the_largest_box_of_the_output_aspect(size_in, size_out, box):
    op = centred_crop(*size_in, *size_out)
    assert op.box(*size_in) == box and op.out_size(*size_in) == size_out


def test_a_640x480_driver_image_becomes_the_observation_with_its_side_bands_cropped_away():
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :80, 0] = 255  # red band: cropped away
    rgb[:, 560:, 2] = 255  # blue band: cropped away
    rgb[:, 80:560, 1] = np.linspace(0, 255, 480).astype(np.uint8)  # green ramp across the kept square
    out = ImageFit(16, 16).image(rgb)
    assert out.shape == (16, 16, 3)
    assert out[:, :, 0].max() == 0 and out[:, :, 2].max() == 0
    expected = cv2.resize(rgb[:, 80:560], (16, 16), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out, expected)
    boxed = ImageFit(16, 16, (0, 0, 80, 480)).image(rgb)  # an explicit box: the red band, squeezed
    assert boxed.shape == (16, 16, 3) and boxed[:, :, 0].min() == 255
    with pytest.raises(ValueError, match="does not fit in the 640x480 capture"):
        ImageFit(16, 16, (600, 0, 80, 80)).image(rgb)


def test_intrinsics_follow_the_centred_crop_and_the_resize():
    K = (600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0)  # principal point at the image centre
    out = ImageFit(128, 128).calibration(CameraCalibration(640, 480, K))
    s = 128 / 480
    assert (out.width, out.height) == (128, 128)
    assert out.K[0] == pytest.approx(600 * s) and out.K[4] == pytest.approx(600 * s)
    assert out.K[2] == pytest.approx(63.5) and out.K[5] == pytest.approx(63.5)  # still the centre of 128 px
    assert out.K == CropResize(80, 0, 480, 480, 128, 128).calibration(CameraCalibration(640, 480, K)).K


def test_the_actor_reads_one_crop_box_for_every_camera_or_one_per_camera():
    two = ("front", "wrist")
    assert ActorConfig(cameras=two).camera_boxes() == {"front": None, "wrist": None}
    assert ActorConfig(cameras=two, camera_crop=(80, 0, 480, 480)).camera_boxes() == {
        "front": (80, 0, 480, 480),
        "wrist": (80, 0, 480, 480),
    }
    assert ActorConfig(cameras=two, camera_crop=(0, 0, 0, 0, 10, 20, 300, 300)).camera_boxes() == {
        "front": None,
        "wrist": (10, 20, 300, 300),
    }
    for bad in [(1, 2, 3), (0, 0, 0, 0, 1, 1), (-1, 0, 10, 10)]:
        with pytest.raises(ValueError, match="camera_crop must be 4 integers"):
            ActorConfig(cameras=two, camera_crop=bad).validate()


@pytest.mark.ros  # real sensor_msgs messages, no DDS
def test_the_actors_camera_input_takes_a_usb_cam_frame_and_reports_the_adjusted_intrinsics():
    from sensor_msgs.msg import CameraInfo, Image

    from robot_rl.nodes import actor_inputs
    from robot_rl.ros import convert

    layout = ActorConfig(obs_mode="pixels", cameras=("front",), image_size=32).layout()
    cameras = actor_inputs.CameraInputs(layout, {"front": None})
    rgb = _make_rgb(480, 640)
    step, data = _encode(rgb, "yuv422_yuy2")
    msg = Image(height=480, width=640, encoding="yuv422_yuy2", step=step, data=data)
    msg.header.stamp.sec = 7
    image, stamp_s = cameras.image("front", msg)
    expected = cv2.resize(rgb[:, 80:560], (32, 32), interpolation=cv2.INTER_AREA)
    assert image.shape == (32, 32, 3) and stamp_s == 7.0
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 4
    info = CameraInfo(
        width=640,
        height=480,
        distortion_model="plumb_bob",
        d=[0.1, 0.0, 0.0, 0.0, 0.0],
        k=[500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
    )
    cameras.on_info("front", info)  # an all-zero P reads as [K | 0]
    report = cameras.report()["front"]
    s = 32 / 480
    assert report["source_size"] == [640, 480] and report["crop"] == [80, 0, 480, 480] and report["size"] == [32, 32]
    assert report["K"] == pytest.approx([500 * s, 0, (320 - 80 + 0.5) * s - 0.5, 0, 500 * s, 240.5 * s - 0.5, 0, 0, 1])
    bad = CameraInfo(width=640, height=480, k=[500.0, 0.0, 320.0, 0.0, -5.0, 240.0, 0.0, 0.0, 1.0])
    with pytest.raises(convert.MessageError, match="camera_info unusable: calibration K needs fx > 0, fy > 0"):
        cameras.on_info("front", bad)
    assert cameras.report()["front"]["K"] == report["K"]  # a refused camera_info changes nothing
    cameras.on_info("front", CameraInfo(width=640, height=480))  # usb_cam without a calibration file: K all zero
    assert cameras.report()["front"]["K"] is None
    with pytest.raises(convert.MessageError, match="depth or 16/32-bit"):
        cameras.image("front", Image(height=2, width=2, encoding="16UC1", step=4, data=bytes(8)))
