"""Frames for looking at a stored episode: cameras side by side over a strip of per-step signals.

The strip (the action dimensions, reward, is_intervention and success over the whole episode) is
drawn once with OpenCV; each frame copies it and draws a cursor at the current step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from robot_rl import keys

# signal plotted in the strip -> RGB colour
SIGNALS = {keys.REWARD: (80, 200, 80), keys.IS_INTERVENTION: (240, 150, 40), keys.SUCCESS: (80, 160, 255)}
_ACTION_COLOURS = (  # RGB of action dimensions 0, 1, 2, ... (cycled)
    (255, 90, 90),
    (90, 255, 90),
    (90, 140, 255),
    (255, 220, 60),
    (220, 90, 255),
    (60, 230, 230),
    (230, 230, 230),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class ViewConfig:
    camera_height_px: int = 256  # every camera image is scaled to this height (aspect kept)
    track_height_px: int = 36  # height of one signal's track in the strip
    label_width_px: int = 120  # left margin of the strip holding the signal names


def camera_keys(episode: Mapping[str, np.ndarray]) -> list[str]:
    """Image keys of an episode ((T, H, W, 3) uint8), sorted."""
    return sorted(k for k, v in episode.items() if keys.is_image_key(k) and v.ndim == 4 and v.shape[-1] == 3)


def _scaled_width(image_hw: tuple[int, int], height_px: int) -> int:
    return max(1, round(image_hw[1] * height_px / image_hw[0]))


def _signal_track(
    values: np.ndarray,
    width_px: int,
    x0: int,
    px_per_step: float,
    colour: tuple[int, int, int],
    label: str,
    config: ViewConfig,
) -> np.ndarray:
    """One track: a bar per step of |value| (scaled to the episode's largest), name on the left."""
    track = np.full((config.track_height_px, width_px, 3), 24, np.uint8)
    bottom = config.track_height_px - 6
    scale = float(np.max(np.abs(values))) or 1.0
    cv2.line(track, (x0, bottom), (width_px - 4, bottom), (90, 90, 90), 1)
    for t in np.flatnonzero(values):
        x_a, x_b = int(x0 + t * px_per_step), int(x0 + (t + 1) * px_per_step) - 1
        y = int(bottom - (bottom - 4) * abs(values[t]) / scale)
        cv2.rectangle(track, (x_a, y), (max(x_a, x_b), bottom), colour, thickness=-1)
    cv2.putText(track, label, (4, bottom - 6), _FONT, 0.38, (230, 230, 230), 1, cv2.LINE_AA)
    return track


def _action_track(action: np.ndarray, width_px: int, x0: int, px_per_step: float, config: ViewConfig) -> np.ndarray:
    """Every action dimension as a line over the episode, on the normalised range [-1, 1]."""
    height = 2 * config.track_height_px
    track = np.full((height, width_px, 3), 24, np.uint8)
    mid, half = height // 2, height // 2 - 4
    cv2.line(track, (x0, mid), (width_px - 4, mid), (90, 90, 90), 1)
    xs = x0 + (np.arange(len(action)) + 0.5) * px_per_step
    for dim in range(action.shape[1]):
        ys = mid - half * np.clip(action[:, dim], -1.0, 1.0)
        points = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(track, [points], isClosed=False, color=_ACTION_COLOURS[dim % len(_ACTION_COLOURS)], thickness=1)
    cv2.putText(track, f"action ({action.shape[1]}d)", (4, mid + 4), _FONT, 0.38, (230, 230, 230), 1, cv2.LINE_AA)
    return track


def _plot_strip(episode: Mapping[str, np.ndarray], width_px: int, config: ViewConfig) -> tuple[np.ndarray, int, float]:
    """The strip under the cameras (RGB) and its time axis: (image, x of step 0, pixels per step)."""
    action = episode[keys.ACTION].reshape(len(episode[keys.ACTION]), -1)  # (T, A)
    x0 = config.label_width_px
    px_per_step = (width_px - x0 - 4) / len(action)
    tracks = [_action_track(action, width_px, x0, px_per_step, config)]
    for key, colour in SIGNALS.items():
        if key in episode:
            values = episode[key].astype(np.float64).reshape(len(action), -1)[:, 0]
            label = f"{key} (max {np.max(np.abs(values)):g})" if key == keys.REWARD else key
            tracks.append(_signal_track(values, width_px, x0, px_per_step, colour, label, config))
    return np.concatenate(tracks, axis=0), x0, px_per_step


def episode_frames(episode: Mapping[str, np.ndarray], config: ViewConfig = ViewConfig()) -> Iterator[np.ndarray]:
    """One RGB frame (H, W, 3) per step: cameras side by side, the signal strip under them."""
    length = len(episode[keys.ACTION])
    cams = camera_keys(episode)
    h = config.camera_height_px
    widths = [_scaled_width(episode[c].shape[1:3], h) for c in cams]
    width_px = max(sum(widths), config.label_width_px + 200)
    if not cams:
        h = 28  # just the status line
    strip, x0, px_per_step = _plot_strip(episode, width_px, config)
    t_capture = episode.get(keys.T_CAPTURE)
    for t in range(length):
        top = np.zeros((h, width_px, 3), np.uint8)
        x = 0
        for cam, w in zip(cams, widths, strict=True):
            top[:, x : x + w] = cv2.resize(episode[cam][t], (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.putText(top, keys.camera_of(cam), (x + 6, 18), _FONT, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
            x += w
        status = f"step {t}/{length - 1}" + ("" if cams else "  (no cameras)")
        if t_capture is not None:
            status += f"  t={float(t_capture[t] - t_capture[0]):.2f}s"
        cv2.putText(top, status, (6, h - 8), _FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        bottom = strip.copy()
        cursor = int(x0 + (t + 0.5) * px_per_step)
        cv2.line(bottom, (cursor, 0), (cursor, bottom.shape[0] - 1), (255, 255, 255), 1)
        yield np.concatenate([top, bottom], axis=0)
