"""The actor node's Rerun view (`viz:=rerun`): its steps in the layout of `robot_rl.viz.rerun_log`, off the
control path.

The node calls two methods from its tick, each a non-blocking `VizThread.submit` (arrays copied, the item
dropped and counted when the queue is full): `act` when it sends an action (the observation's cameras, the
executed, proposed and base actions, whether a person intervened) and `outcome` when that step's result is known
(reward, success, whether the episode ended). Episode boundaries follow from the row numbers and end flags. The
JPEG encoding and Rerun's serialisation run on the view's own thread. Rows are the actor store's: the step
recorded at row r of the store is at `step` r on the timeline; a discarded (re-recorded) episode's rows are
shown and then reused by the next episode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl import keys

MAX_QUEUE = 64  # items (one per act / outcome): ~3 s at 10 Hz; more is dropped, never waited for


def viz_file(store_path: str) -> Path:
    """The .rrd beside an actor's store: `<store>-viz.rrd`."""
    store = Path(store_path)
    return store.with_name(f"{store.name}-viz.rrd")


class ActorViz:
    """See the module docstring. `stream` is a `VizThread` (or anything with `submit(method, **kwargs)`)."""

    def __init__(self, stream: Any):
        self.stream = stream
        self._episode: int | None = None  # index of the episode on screen
        self._length, self._return, self._success = 0, 0.0, False

    def act(
        self, row: int, episode: int, obs: Mapping[str, np.ndarray], executed, proposed, base, is_intervention: bool
    ) -> None:
        if episode != self._episode:
            self._episode, self._length, self._return, self._success = episode, 0, 0.0, False
            self.stream.submit("episode_start", step=row, index=episode)
        images = {keys.camera_of(k): v for k, v in obs.items() if keys.is_image_key(k)}
        self.stream.submit(
            "step",
            step=row,
            images=images,
            action=np.asarray(executed),
            policy_action=np.asarray(proposed),
            base_action=None if base is None else np.asarray(base),
            episode=episode,
            intervention=bool(is_intervention),
        )

    def outcome(self, row: int, reward: float, success: bool, done: bool) -> None:
        self.stream.submit("step", step=row, reward=float(reward), success=bool(success))
        self._length += 1
        self._return += float(reward)
        self._success = self._success or bool(success)
        if done and self._episode is not None:
            self.stream.submit(
                "episode_end",
                step=row,
                index=self._episode,
                length=self._length,
                return_=self._return,
                success=self._success,
            )
            self._episode = None

    def close(self) -> None:
        self.stream.close()


def make_actor_viz(cfg: Any, layout: Any, warn: Callable[[str], None] | None = None) -> ActorViz | None:
    """None for `cfg.viz` "none"; else the view to `<store>-viz.rrd`, or to the viewer at `cfg.viz_connect`.
    `cfg`: the node's ActorConfig, `layout`: its ActorLayout (action names, cameras)."""
    if cfg.viz == "none":
        return None
    from robot_rl.viz.rerun_log import RerunLog
    from robot_rl.viz.stream import VizThread

    save = None if cfg.viz_connect else viz_file(cfg.store)
    log = RerunLog.open(
        save, cfg.viz_connect or None, layout.action_layout, layout.image_cameras, name=Path(cfg.store).name
    )
    return ActorViz(VizThread(log, max_queue=MAX_QUEUE, on_error=warn))
