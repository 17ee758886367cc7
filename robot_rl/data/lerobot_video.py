"""Camera streams of a LeRobotDataset: H.264 mp4 files written and read with PyAV.

One file per camera holds every episode back to back; frame g of the file has the presentation time
g / fps exactly (time base 1/fps, no B-frames), which is what LeRobot's decoders look up within 1e-4 s.
Colour is stored as yuv444p (no chroma subsampling) at a low CRF so a round trip keeps images above
40 dB PSNR (`VideoCodec`); a keyframe every 2 frames, as LeRobot's own writer, keeps random access cheap.

Speed: RGB <-> YUV is done here, a whole episode (or file) at a time with one `cv2.transform` per direction,
in BT.601 limited range -- the conversion FFmpeg's swscale applies to a stream that names no colour space, so
any decoder (LeRobot's PyAV path, ffmpeg) gives back the same colours. Per frame, swscale's generic
yuv444p <-> rgb24 path cost more than the codec (export 0.7 s of encoding, import 0.5 s of conversion for
718 frames); a frame in another format or colour space (a dataset LeRobot wrote) falls back to swscale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# BT.601 limited range: RGB (0..255) -> Y (16..235), Cb, Cr (16..240), as rows of a 3x4 affine map
_RGB_TO_YUV = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])
RGB_TO_YUV = np.hstack([_RGB_TO_YUV, _YUV_OFFSET[:, None]]).astype(np.float32)
YUV_TO_RGB = np.hstack([np.linalg.inv(_RGB_TO_YUV), -np.linalg.inv(_RGB_TO_YUV) @ _YUV_OFFSET[:, None]]).astype(
    np.float32
)
_LIMITED_RANGE = (0, 1)  # AVColorRange: unspecified, MPEG (limited)
_BT601 = (2, 5, 6)  # AVColorSpace: unspecified, BT470BG, SMPTE170M


def rgb_to_yuv444(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames (N, H, W, 3) -> yuv444p planes (N, 3, H, W), BT.601 limited range, rounded."""
    n, h, w, _ = frames.shape
    yuv = cv2.transform(np.ascontiguousarray(frames).reshape(n * h, w, 3), RGB_TO_YUV)  # saturating, rounded
    return np.ascontiguousarray(yuv.reshape(n, h, w, 3).transpose(0, 3, 1, 2))


def yuv444_to_rgb(planes: np.ndarray) -> np.ndarray:
    """The inverse of `rgb_to_yuv444`: yuv444p planes (N, 3, H, W) -> RGB uint8 (N, H, W, 3)."""
    n, _, h, w = planes.shape
    yuv = np.ascontiguousarray(planes.transpose(0, 2, 3, 1)).reshape(n * h, w, 3)
    return cv2.transform(yuv, YUV_TO_RGB).reshape(n, h, w, 3)


@dataclass(frozen=True)
class VideoCodec:
    codec: str = "libx264"  # PyAV encoder; LeRobot reads it as "h264"
    pix_fmt: str = "yuv444p"  # full colour resolution; yuv420p loses ~4 dB on the sim's sharp edges
    # x264's fastest preset at CRF 14. On the sim's 128 px cameras (359 frames, one thread, CPU s): medium CRF 12
    # 0.30 s, 43.2-43.7 dB, 0.62 MB; veryfast 0.14 s; ultrafast CRF 14 0.055 s, >= 45.6 dB, 0.97 MB (CRF 12:
    # 47 dB, 1.08 MB; CRF 18: 43.1 dB, 0.75 MB). Decoding ultrafast's stream is faster too (no CABAC).
    preset: str = "ultrafast"
    crf: int = 14  # constant rate factor (lower: larger files, higher PSNR)
    gop: int = 2  # frames per keyframe interval
    threads: int = 1  # encoder threads per stream: the cameras are encoded in parallel instead


class VideoWriter:
    """Appends RGB uint8 frames (H, W, 3) of one size to an mp4 at `fps`; `close()` flushes the encoder."""

    def __init__(self, path: str | os.PathLike, fps: int, height: int, width: int, codec: VideoCodec = VideoCodec()):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.n_frames = 0
        self._container = av.open(str(self.path), "w")
        options = {"crf": str(codec.crf), "g": str(codec.gop), "bf": "0", "preset": codec.preset}
        self._stream = self._container.add_stream(codec.codec, rate=int(fps), options=options)
        self._stream.codec_context.thread_count = codec.threads
        self._stream.pix_fmt = codec.pix_fmt
        self._stream.height, self._stream.width = int(height), int(width)
        self._av = av

    def write(self, frames: np.ndarray) -> None:
        """Append RGB uint8 frames (N, H, W, 3); PyAV releases the GIL while encoding, so writers of several
        cameras run in parallel on threads."""
        for planes in rgb_to_yuv444(np.asarray(frames)):
            frame = self._av.VideoFrame.from_ndarray(planes, format="yuv444p")
            frame.pts = self.n_frames
            self._container.mux(self._stream.encode(frame))
            self.n_frames += 1

    def close(self) -> None:
        if self._container is not None:
            self._container.mux(self._stream.encode())  # flush
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def video_info(path: str | os.PathLike, fps: int) -> dict:
    """The `info` block of a video feature in meta/info.json, as LeRobot's `get_video_info` makes it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(fps),
            "video.channels": 3,
            "has_audio": len(container.streams.audio) > 0,
        }


def read_frames(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of an mp4's first video stream: (times in s (N,), RGB uint8 frames (N, H, W, 3))."""
    import av

    times, frames, planar = [], [], True  # planar: every frame yuv444p BT.601 limited range (our own export)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            times.append(float(frame.time))
            ours = frame.format.name == "yuv444p" and frame.color_range in _LIMITED_RANGE and frame.colorspace in _BT601
            if planar and not ours:  # from here on swscale converts; the frames so far are converted now
                frames, planar = list(yuv444_to_rgb(np.stack(frames))) if frames else [], False
            frames.append(frame.to_ndarray() if planar else frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError(f"{path} holds no video frames")
    return np.asarray(times), yuv444_to_rgb(np.stack(frames)) if planar else np.stack(frames)
