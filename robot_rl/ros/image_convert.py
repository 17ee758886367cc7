"""Camera images as ROS drivers publish them -> the (H, W, 3) uint8 RGB arrays our nodes use, cropped and resized.

ROS-free (numpy and OpenCV only, tested without ROS): `convert.frame_from_image` wraps `to_rgb` for every node that
reads sensor_msgs/Image (the actor, the reward node), and the actor's `ImageFit` then crops and resizes with the
camera node's own `CropResize` (robot_rl_drivers.camera_geometry), so a camera seen through our camera node or
straight from a driver gives the same pixels and the same intrinsics. It sits next to `convert.py`, the one place
nodes turn messages into numbers.

Encodings (sensor_msgs/image_encodings names, as realsense2_camera, usb_cam and v4l2_camera publish them):

| encoding                 | bytes per pixel | what                                                          |
|--------------------------|-----------------|---------------------------------------------------------------|
| rgb8, bgr8               | 3               | realsense2_camera colour (rgb8 by default), usb_cam *2rgb     |
| rgba8, bgra8             | 4               | alpha dropped                                                 |
| mono8                    | 1               | grey, repeated into three channels                            |
| yuv422_yuy2 (alias yuyv) | 2               | Y0 U Y1 V, usb_cam's default pixel_format yuyv (BT.601)       |
| yuv422 (alias uyvy)      | 2               | U Y0 V Y1, usb_cam's pixel_format uyvy                        |

Depth and 16/32-bit images (16UC1, 32FC1, mono16, ...) are refused: a colour input fed a depth topic is a wiring
mistake. Each row is `step` bytes (>= width x bytes per pixel: drivers may pad rows) and `data` is exactly
height x step bytes. `is_bigendian` orders the bytes of multi-byte channels; every accepted encoding has one-byte
channels, so it changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_rl_drivers.camera_geometry import CameraCalibration, CropResize, centred_crop

# encoding -> (bytes per pixel, cv2 conversion to RGB; None = already RGB)
COLOUR_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUY2),
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
}
NOT_COLOUR = ("16UC1", "16SC1", "32FC1", "32SC1", "64FC1", "mono16", "rgb16", "bgr16", "rgba16", "bgra16")


class ImageError(ValueError):
    """An image that cannot become RGB: unknown or depth encoding, or data that does not match its size."""


def to_rgb(encoding: str, width: int, height: int, step: int, data: bytes) -> np.ndarray:
    """A driver's image bytes -> (height, width, 3) uint8 RGB, a fresh array; raises ImageError naming what is wrong."""
    if encoding in NOT_COLOUR:
        raise ImageError(
            f"image encoding {encoding!r} is depth or 16/32-bit, not colour; point this camera input at "
            f"a colour stream (realsense2_camera: color/image_raw; one of {sorted(COLOUR_ENCODINGS)})"
        )
    if encoding not in COLOUR_ENCODINGS:
        raise ImageError(f"image encoding {encoding!r} is not supported; send one of {sorted(COLOUR_ENCODINGS)}")
    bytes_per_px, to_rgb_code = COLOUR_ENCODINGS[encoding]
    row_bytes = width * bytes_per_px
    if width <= 0 or height <= 0 or step < row_bytes or len(data) != height * step:
        raise ImageError(
            f"{encoding} image of {width}x{height} with step {step} needs {height * step} bytes "
            f"(step >= {row_bytes}), got {len(data)}"
        )
    if bytes_per_px == 2 and width % 2:
        raise ImageError(f"{encoding} packs two pixels in four bytes, so its width must be even; got {width}")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]  # drops the row padding
    pixels = rows.reshape(height, width, bytes_per_px) if bytes_per_px > 1 else rows
    if to_rgb_code is None:
        return np.array(pixels)  # a copy: the message's buffer is not ours to keep
    return cv2.cvtColor(np.ascontiguousarray(pixels), to_rgb_code)


@dataclass(frozen=True)
class ImageFit:
    """How one camera's images become the observation's width x height: a crop box, then a resize.

    `box` (x, y, w, h) in the driver's pixels, as the camera node's `crop` (w or h 0 = to the edge); None = the
    largest centred box of the output's aspect ratio, whatever size the driver sends (`centred_crop`).
    """

    width: int  # output width (px)
    height: int  # output height (px)
    box: tuple[int, int, int, int] | None = None  # crop in the driver's pixels; None = centred to the output aspect

    def crop_resize(self, in_width: int, in_height: int) -> CropResize:
        """The crop and resize for images of in_width x in_height (the camera node's own operation)."""
        if self.box is None:
            return centred_crop(in_width, in_height, self.width, self.height)
        x, y, w, h = self.box
        return CropResize(x, y, w, h, self.width, self.height)

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) driver image -> (height, width, 3); raises ValueError when the box does not fit."""
        in_h, in_w = rgb.shape[:2]
        return self.crop_resize(in_w, in_h).image(rgb)

    def calibration(self, calib: CameraCalibration) -> CameraCalibration:
        """The intrinsics of the output images, from the driver's (K and P through the same crop and resize)."""
        return self.crop_resize(calib.width, calib.height).calibration(calib)
