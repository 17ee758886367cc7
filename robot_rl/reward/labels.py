"""Per-frame success labels of an episode store, and their edits, kept in a sidecar file.

A frame is row t's observation (its camera images). Its label says whether the task is solved *in that
frame*. Two ways to derive it from the store's per-step `success` key (`keys.SUCCESS`):

- "sim" (default): the recorder writes into row t the success reported with the observation that
  *followed* action t (the env's info, or the `task/success` topic the ROS actor read with that
  observation), so frame t's label is row t-1's success; frame 0 is 0. Episodes that terminated on
  success therefore hold no positive frame (the final observation is not stored): record reward data
  with `robot-rl reward record`, which keeps the episode running after success.
- "teleop": the teleop success key (a person's, or the scripted operator's) marks the row at which it was
  pressed, i.e. where the task was judged done;
  that frame and every later one are positive.

Edits (`robot-rl reward label STORE --set EP:FROM-TO=1`) are kept, in order, in the sidecar file
`<store>/reward_labels.json` (the store's own arrays are never touched, so the store stays appendable).
Labels are the derived ones with every edit applied; episodes added later get derived labels.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from robot_rl import keys

LABELS_FILE = "reward_labels.json"
SOURCES = ("sim", "teleop")
RENAMED_SOURCES = {"operator": "teleop"}  # older names, still read (sidecar files saved before the rename)
_SET_RE = re.compile(r"^(\d+):(\d+)(?:-(\d+))?=([01])$")


@dataclass(frozen=True)
class LabelEdit:
    """Frames [start, stop) of one episode set to `value`."""

    episode: int  # episode index in the store
    start: int  # first frame (row) of the episode set
    stop: int  # one past the last frame set
    value: int  # 0 or 1


def parse_edit(text: str) -> LabelEdit:
    """'EP:FROM-TO=V' (frames FROM..TO inclusive) or 'EP:FRAME=V' -> LabelEdit."""
    m = _SET_RE.match(text.strip())
    if m is None:
        raise ValueError(f"label edit {text!r} is not EP:FROM-TO=V or EP:FRAME=V (e.g. 3:40-99=1, 5:0-20=0)")
    ep, first = int(m[1]), int(m[2])
    last = int(m[3]) if m[3] is not None else first
    if last < first:
        raise ValueError(f"label edit {text!r}: FROM {first} is after TO {last}")
    return LabelEdit(ep, first, last + 1, int(m[4]))


def frame_labels(success: np.ndarray, source: str = "sim") -> np.ndarray:
    """(T,) bool success key of one episode -> (T,) uint8 frame labels (see the module docstring)."""
    source = RENAMED_SOURCES.get(source, source)
    if source not in SOURCES:
        raise ValueError(f"label source {source!r}; choose one of {SOURCES}")
    s = np.asarray(success, dtype=bool)
    if source == "sim":
        return np.concatenate([[False], s[:-1]]).astype(np.uint8)
    first = int(np.argmax(s)) if s.any() else len(s)
    out = np.zeros(len(s), np.uint8)
    out[first:] = 1
    return out


def flips(labels: np.ndarray) -> list[int]:
    """Frames whose label differs from the previous frame's."""
    return [int(i) + 1 for i in np.flatnonzero(np.diff(labels.astype(np.int8)))]


class StoreLabels:
    """Frame labels of every episode of one store: derived from its success key, plus the sidecar's edits."""

    def __init__(self, store, source: str | None = None) -> None:
        self.store = store
        self.path = Path(store.path) / LABELS_FILE
        saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.source = source or saved.get("source", "sim")
        self.source = RENAMED_SOURCES.get(self.source, self.source)
        if self.source not in SOURCES:
            raise ValueError(f"label source {self.source!r}; choose one of {SOURCES}")
        self.edits = [LabelEdit(**e) for e in saved.get("edits", [])]
        if keys.SUCCESS not in store.spec:
            raise ValueError(
                f"{store.path} has no {keys.SUCCESS!r} key to derive labels from; its keys are {list(store.keys)}"
            )
        success = store.get_key(keys.SUCCESS)
        self.ends = store.episode_ends
        self._derived = [
            frame_labels(success[s.start : s.stop], self.source)
            for s in (store.episode_slice(i) for i in range(store.n_episodes))
        ]
        for edit in self.edits:
            self._check(edit)

    @property
    def n_episodes(self) -> int:
        return len(self._derived)

    def derived(self, episode: int) -> np.ndarray:
        return self._derived[episode].copy()

    def episode(self, episode: int) -> np.ndarray:
        """(T,) uint8 labels of one episode, edits applied."""
        out = self.derived(episode)
        for e in self.edits:
            if e.episode == episode:
                out[e.start : e.stop] = e.value
        return out

    def all(self) -> np.ndarray:
        """(n_steps,) uint8 labels of every frame of the store, in row order."""
        return (
            np.concatenate([self.episode(i) for i in range(self.n_episodes)])
            if self.n_episodes
            else np.zeros(0, np.uint8)
        )

    def add(self, edit: LabelEdit) -> None:
        self._check(edit)
        self.edits.append(edit)

    def save(self) -> Path:
        """Write source and edits to the sidecar file (atomically: temporary file + rename)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"version": 1, "source": self.source, "edits": [asdict(e) for e in self.edits]}, indent=1)
        )
        os.replace(tmp, self.path)
        return self.path

    def table(self) -> list[dict]:
        """One row per episode: length, positives, first positive frame, flips, edited."""
        rows = []
        for i in range(self.n_episodes):
            lab = self.episode(i)
            rows.append(
                {
                    "episode": i,
                    "frames": len(lab),
                    "positive": int(lab.sum()),
                    "first_positive": int(np.argmax(lab)) if lab.any() else None,
                    "flips": flips(lab),
                    "edited": any(e.episode == i for e in self.edits),
                }
            )
        return rows

    def _check(self, edit: LabelEdit) -> None:
        if not 0 <= edit.episode < self.n_episodes:
            raise ValueError(
                f"label edit {edit}: episode {edit.episode} out of range (the store holds {self.n_episodes})"
            )
        n = len(self._derived[edit.episode])
        if edit.stop > n:
            raise ValueError(
                f"label edit {edit}: episode {edit.episode} has frames 0..{n - 1}; got up to {edit.stop - 1}"
            )
        if edit.value not in (0, 1):
            raise ValueError(f"label edit {edit}: value must be 0 or 1")


def format_table(rows: list[dict]) -> str:
    lines = [f"{'episode':>7} {'frames':>6} {'positive':>8} {'first+':>6}  flips{'':14} edited"]
    for r in rows:
        first = "-" if r["first_positive"] is None else str(r["first_positive"])
        fl = ",".join(map(str, r["flips"][:6])) + ("..." if len(r["flips"]) > 6 else "")
        lines.append(
            f"{r['episode']:>7} {r['frames']:>6} {r['positive']:>8} {first:>6}  {fl:<19} {'yes' if r['edited'] else ''}"
        )
    pos = sum(r["positive"] for r in rows)
    total = sum(r["frames"] for r in rows)
    lines.append(f"{len(rows)} episodes, {total} frames, {pos} positive ({100 * pos / max(total, 1):.1f} %)")
    return "\n".join(lines)


def balanced_indices(
    labels: np.ndarray, n: int, rng: np.random.Generator, positive_fraction: float = 0.5
) -> np.ndarray:
    """n frame indices drawn with replacement, `positive_fraction` of them from positive frames (if any)."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(
            f"balanced sampling needs both labels; got {len(pos)} positive and {len(neg)} negative frames "
            "(record failing and successful episodes, or fix the labels)"
        )
    n_pos = int(round(n * positive_fraction))
    return rng.permutation(np.concatenate([rng.choice(pos, n_pos), rng.choice(neg, n - n_pos)]))
