"""mp4 files from RGB frames (OpenCV `VideoWriter`, mp4v), and reading them back for checks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> int:
    """Write RGB uint8 frames, each (H, W, 3) of one size, to an mp4 file; return the frame count.

    Odd sizes are padded by one black row/column (mp4v wants even sizes). Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fps <= 0:
        raise ValueError(f"fps must be positive; got {fps}")
    writer, size, count = None, None, 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be RGB uint8 (H, W, 3); got {frame.dtype} {frame.shape}")
            if writer is None:
                size = frame.shape[:2]
                even_hw = (size[0] + size[0] % 2, size[1] + size[1] % 2)
                writer = cv2.VideoWriter(
                    str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (even_hw[1], even_hw[0])
                )
                if not writer.isOpened():
                    raise OSError(f"OpenCV could not open {path} for writing an mp4v video")
            elif frame.shape[:2] != size:
                raise ValueError(f"all frames must have one size; frame {count} is {frame.shape[:2]}, the first {size}")
            pad = ((0, size[0] % 2), (0, size[1] % 2), (0, 0))
            writer.write(cv2.cvtColor(np.pad(frame, pad), cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise ValueError(f"no frames to write to {path}")
    return count


def read_mp4(path: str | os.PathLike) -> list[np.ndarray]:
    """Decode every frame of a video file as RGB uint8 (H, W, 3)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"OpenCV could not open {path} for reading")
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames
