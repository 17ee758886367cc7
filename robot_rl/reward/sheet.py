"""A contact sheet of frames around label flips, for reviewing labels by eye (`robot-rl reward label --sheet`).

One row per flip (episode, frame where the label changes): `context` frames before and after it, each
camera stacked vertically, a green (positive) or red (negative) bar under each frame with its index.
Episodes without a flip get one row of evenly spaced frames, so all-negative episodes are reviewed too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from robot_rl import keys
from robot_rl.reward.labels import StoreLabels, flips

POSITIVE_RGB = (40, 200, 60)
NEGATIVE_RGB = (220, 40, 40)


def _tile(frames: list[np.ndarray], index: int, label: int, size: int) -> np.ndarray:
    img = np.concatenate([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames], axis=0)
    bar = np.zeros((14, size, 3), np.uint8)
    bar[:] = POSITIVE_RGB if label else NEGATIVE_RGB
    cv2.putText(bar, str(index), (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return np.pad(np.concatenate([img, bar], axis=0), ((0, 2), (0, 2), (0, 0)), constant_values=255)


def contact_sheet(
    labels: StoreLabels,
    out: Path,
    episodes: list[int] | None = None,
    context: int = 3,
    size: int = 64,
    max_rows: int = 40,
) -> dict:
    """Write the sheet PNG to `out`; returns {"rows": n, "episodes": [...]}."""
    store = labels.store
    cams = [k for k in store.keys if keys.is_image_key(k)]
    if not cams:
        raise ValueError(f"{store.path} holds no camera images to show (keys: {list(store.keys)})")
    episodes = list(range(labels.n_episodes)) if episodes is None else episodes
    rows: list[np.ndarray] = []
    shown: list[int] = []
    width = 2 * context + 1
    for ep in episodes:
        lab = labels.episode(ep)
        centres = flips(lab) or [None]
        data = None
        for c in centres:
            if len(rows) >= max_rows:
                break
            data = data or {k: store.get_episode(ep)[k] for k in cams}
            n = len(lab)
            idx = (
                np.clip(np.arange(c - context, c + context + 1), 0, n - 1)
                if c is not None
                else np.linspace(0, n - 1, width).round().astype(int)
            )
            tiles = [_tile([data[k][i] for k in cams], int(i), int(lab[i]), size) for i in idx]
            head = np.full((tiles[0].shape[0], 40, 3), 255, np.uint8)
            cv2.putText(head, f"ep{ep}", (2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
            rows.append(np.concatenate([head, *tiles], axis=1))
            shown.append(ep)
    if not rows:
        raise ValueError("no episodes to show")
    sheet = np.concatenate(rows, axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return {"rows": len(rows), "episodes": sorted(set(shown)), "shape": list(sheet.shape)}
