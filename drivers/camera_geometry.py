"""A camera model as CameraInfo carries it, nominal intrinsics, and what cropping and resizing do to both.

Pixel convention (OpenCV's and ROS's calibration): integer pixel coordinates are pixel centres, so the
centre of a W-pixel-wide image is at (W - 1) / 2. `cv2.resize` maps a source position x to
(x + 0.5) * s - 0.5 at scale s, hence a crop at offset o followed by a resize by s takes the principal
point c to (c - o + 0.5) * s - 0.5 and the focal length f to f * s. (image_proc's resize uses c * s,
which is off by (1 - s) / 2 pixel.) Distortion coefficients act on normalised coordinates and do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

IDENTITY3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class CameraCalibration:
    """Intrinsics of images of width x height, with the fields of sensor_msgs/CameraInfo."""

    width: int  # image width in pixels this model is for
    height: int  # image height in pixels
    K: tuple[float, ...]  # 3x3 camera matrix, row major (fx, 0, cx, 0, fy, cy, 0, 0, 1)
    D: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)  # distortion coefficients of `distortion_model`
    distortion_model: str = "plumb_bob"  # plumb_bob, rational_polynomial or equidistant
    R: tuple[float, ...] = IDENTITY3  # 3x3 rectification rotation, row major (identity for a monocular camera)
    P: tuple[float, ...] = field(default=())  # 3x4 projection, row major; () = [K | 0]
    camera_name: str = ""  # the name the calibration was made for (informative)

    def __post_init__(self) -> None:
        K = tuple(float(v) for v in self.K)
        P = tuple(float(v) for v in self.P) if self.P else (*K[0:3], 0.0, *K[3:6], 0.0, *K[6:9], 0.0)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "D", tuple(float(v) for v in self.D))
        object.__setattr__(self, "R", tuple(float(v) for v in self.R))
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"calibration image size must be positive, got {self.width}x{self.height}")
        for name, values, n in (("K", K, 9), ("R", self.R, 9), ("P", P, 12)):
            if len(values) != n or not all(math.isfinite(v) for v in values):
                raise ValueError(f"calibration {name} must be {n} finite numbers (row major), got {list(values)}")
        if not all(math.isfinite(v) for v in self.D):
            raise ValueError(f"calibration D must be finite, got {list(self.D)}")
        if K[0] <= 0 or K[4] <= 0 or K[8] != 1.0:
            raise ValueError(f"calibration K needs fx > 0, fy > 0 and K[2][2] == 1, got {list(K)}")


def nominal_calibration(width: int, height: int, hfov_deg: float) -> CameraCalibration:
    """An ideal pinhole with the given horizontal field of view, square pixels, principal point at the centre."""
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"nominal horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
    f_px = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return CameraCalibration(width, height, (f_px, 0.0, cx, 0.0, f_px, cy, 0.0, 0.0, 1.0))


@dataclass(frozen=True)
class CropResize:
    """Crop a box out of each image, then resize it to width x height."""

    x: int = 0  # left edge of the crop box, capture pixels
    y: int = 0  # top edge of the crop box, capture pixels
    crop_width: int = 0  # crop box width; 0 = to the right edge
    crop_height: int = 0  # crop box height; 0 = to the bottom edge
    width: int = 0  # output width after the resize; 0 = the crop width
    height: int = 0  # output height after the resize; 0 = the crop height

    def box(self, in_width: int, in_height: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the crop in an in_width x in_height image; raises if it does not fit."""
        w = self.crop_width or in_width - self.x
        h = self.crop_height or in_height - self.y
        if min(self.x, self.y) < 0 or w <= 0 or h <= 0 or self.x + w > in_width or self.y + h > in_height:
            raise ValueError(
                f"crop box x={self.x} y={self.y} width={w} height={h} does not fit in the "
                f"{in_width}x{in_height} capture; it must lie inside (0, 0)-({in_width}, {in_height})"
            )
        if self.width < 0 or self.height < 0:
            raise ValueError(f"output size must be positive (or 0 = crop size), got {self.width}x{self.height}")
        return self.x, self.y, w, h

    def out_size(self, in_width: int, in_height: int) -> tuple[int, int]:
        _, _, w, h = self.box(in_width, in_height)
        return self.width or w, self.height or h

    def image(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) capture -> (height, width, 3) output, a fresh contiguous array."""
        in_h, in_w = image.shape[:2]
        x, y, w, h = self.box(in_w, in_h)
        out_w, out_h = self.out_size(in_w, in_h)
        crop = image[y : y + h, x : x + w]
        if (out_w, out_h) == (w, h):
            return np.ascontiguousarray(crop)
        shrink = out_w * out_h < w * h
        return cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def calibration(self, calib: CameraCalibration) -> CameraCalibration:
        """The model of the output images: K and P through the crop offset and the resize scale."""
        x, y, w, h = self.box(calib.width, calib.height)
        out_w, out_h = self.out_size(calib.width, calib.height)
        sx, sy = out_w / w, out_h / h
        A = np.array([[sx, 0.0, (0.5 - x) * sx - 0.5], [0.0, sy, (0.5 - y) * sy - 0.5], [0.0, 0.0, 1.0]])
        K = A @ np.asarray(calib.K).reshape(3, 3)
        P = A @ np.asarray(calib.P).reshape(3, 4)
        return CameraCalibration(
            out_w,
            out_h,
            tuple(K.ravel().tolist()),
            calib.D,
            calib.distortion_model,
            calib.R,
            tuple(P.ravel().tolist()),
            calib.camera_name,
        )


def centred_crop(in_width: int, in_height: int, out_width: int, out_height: int) -> CropResize:
    """The largest box of the output's aspect ratio centred in an in_width x in_height image, resized to the output.

    A 640x480 driver image for a 128x128 observation: the box x=80, y=0, 480x480, then 128x128 (nothing is
    stretched). An image already of the output size passes unchanged.
    """
    if min(in_width, in_height, out_width, out_height) <= 0:
        raise ValueError(f"image sizes must be positive, got {in_width}x{in_height} -> {out_width}x{out_height}")
    w = min(in_width, round(in_height * out_width / out_height))
    h = min(in_height, round(in_width * out_height / out_width))
    return CropResize((in_width - w) // 2, (in_height - h) // 2, w, h, out_width, out_height)
