"""The Rerun entity layout of an episode view, and `RerunLog`: a recording that logs it step by step.

One layout for every producer (a stored episode, `robot-rl train --viz rerun`, the actor node's `viz:=rerun`),
on one timeline, `step` (the store's row: episodes back to back, or the run's env step)::

    cameras/<camera>                 the observation's image (JPEG) the step's action was chosen from
    action/<dim>/executed            the action sent (after the arbiter: a person's, when they intervened)
    action/<dim>/policy              what the policy (or warm-up) proposed
    action/<dim>/base                the base policy's action (residual RL only)
    signals/reward                   the step's reward
    signals/intervention             1 where a person's action replaced the policy's
    signals/success                  1 where the task's success flag is set
    signals/classifier_prob          a learned reward classifier's success probability (where there is one)
    signals/<key>                    any other per-step scalar a store holds
    episode/index                    the episode a step belongs to (a staircase: boundaries at the steps)
    events                           one text line at each episode's start and end (length, return, success)
    learner/<metric>, eval/<metric>  training only: the learner's status every log_every steps, each evaluation

A default blueprint goes with it: cameras on the left; on the right one time-series panel per action dimension
(executed, policy, base overlaid), the signals, the learner's and evaluation metrics when training, and the event
log. Names with characters Rerun reserves in paths are made safe by `entity_part`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TIMELINE = "step"
APP_ID = "robot_rl"
ACTION_SERIES = {"executed": (235, 235, 235), "policy": (255, 150, 40), "base": (120, 160, 255)}  # -> RGB
SIGNAL_COLOURS = {  # RGB, as robot_rl.data.view's strip
    "reward": (80, 200, 80),
    "intervention": (240, 150, 40),
    "success": (80, 160, 255),
    "classifier_prob": (220, 90, 255),
}
JPEG_QUALITY = 92  # camera images: ~5 kB a 128 px frame, and sharp enough to see the gripper


def entity_part(name: str) -> str:
    """One path part for a name (a camera, an action dimension, a metric): Rerun's reserved characters -> `_`."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name)) or "_"


def camera_path(camera: str) -> str:
    return f"cameras/{entity_part(camera)}"


def action_path(dim_name: str, series: str) -> str:
    """`series`: executed, policy or base."""
    return f"action/{entity_part(dim_name)}/{series}"


def signal_path(name: str) -> str:
    return f"signals/{entity_part(name)}"


def metric_path(group: str, name: str) -> str:
    """`group`: learner or eval; the metric's own slashes (e.g. `train/critic_loss`) become path levels."""
    return "/".join([group, *(entity_part(p) for p in str(name).split("/") if p)])


def jpeg(image: np.ndarray) -> bytes:
    """An RGB uint8 image (H, W, 3) as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ValueError(f"could not encode an image of shape {np.shape(image)} as JPEG")
    return data.tobytes()


def open_recording(save: str | os.PathLike | None, connect: str | None, name: str) -> Any:
    """A Rerun recording stream (not the global one) to an .rrd file, a viewer at `connect`
    (e.g. rerun+http://127.0.0.1:9876/proxy), or both."""
    import rerun as rr

    if save is None and connect is None:
        raise ValueError("a Rerun view needs a file to save to or a viewer address to connect to")
    rec = rr.RecordingStream(APP_ID)
    sinks = []
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        sinks.append(rr.FileSink(str(save)))
    if connect is not None:
        sinks.append(rr.GrpcSink(connect))
    rec.set_sinks(*sinks)  # only what is logged after this reaches the sinks
    rec.send_recording_name(name)
    return rec


def default_blueprint(cameras: Sequence[str], action_names: Sequence[str], training: bool) -> Any:
    """The layout described in the module docstring."""
    import rerun.blueprint as rrb

    left = [rrb.Spatial2DView(origin=camera_path(c), name=c) for c in cameras] or [
        rrb.TextDocumentView(origin="/", name="no cameras")
    ]
    actions = [rrb.TimeSeriesView(origin=f"action/{entity_part(n)}", name=f"action {n}") for n in action_names]
    right = [
        rrb.Grid(*actions, name="actions"),
        rrb.TimeSeriesView(origin="signals", name="reward, intervention, success"),
    ]
    if training:
        right += [rrb.TimeSeriesView(origin="learner", name="learner"), rrb.TimeSeriesView(origin="eval", name="eval")]
    right.append(rrb.TextLogView(origin="events", name="episodes"))
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(*left), rrb.Vertical(*right, row_shares=[3] + [1] * (len(right) - 1)), column_shares=[1, 2]
        ),
        rrb.TimePanel(timeline=TIMELINE, play_state="following", state="collapsed"),  # at the newest step
        collapse_panels=True,
    )


class RerunLog:
    """A recording in the layout above: series styles and the blueprint sent once, then `step`, `episode_start`,
    `episode_end` and `metrics` as things happen. Not thread-safe: one thread logs (see `robot_rl.viz.stream`)."""

    def __init__(self, rec: Any, action_names: Sequence[str], cameras: Sequence[str] = (), training: bool = False):
        import rerun as rr

        self.rr, self.rec = rr, rec
        self.action_names = [str(n) for n in action_names]
        for name in self.action_names:
            for series, colour in ACTION_SERIES.items():
                rec.log(action_path(name, series), rr.SeriesLines(names=series, colors=[colour]), static=True)
        for name, colour in SIGNAL_COLOURS.items():
            rec.log(signal_path(name), rr.SeriesLines(names=name, colors=[colour]), static=True)
        rec.send_blueprint(default_blueprint(list(cameras), self.action_names, training))

    @classmethod
    def open(
        cls,
        save: str | os.PathLike | None,
        connect: str | None,
        action_names: Sequence[str],
        cameras: Sequence[str] = (),
        training: bool = False,
        name: str = "robot_rl",
    ) -> RerunLog:
        return cls(open_recording(save, connect, name), action_names, cameras, training)

    def names_for(self, width: int) -> list[str]:
        """Action dimension names for a (width,) action: the layout's, or a0, a1, ... when it does not fit."""
        return self.action_names if len(self.action_names) == width else [f"a{i}" for i in range(width)]

    def step(
        self,
        step: int,
        images: Mapping[str, np.ndarray] | None = None,
        action: np.ndarray | None = None,
        policy_action: np.ndarray | None = None,
        base_action: np.ndarray | None = None,
        episode: int | None = None,
        **signals: float | bool | None,
    ) -> None:
        """Log what is given of one step: camera images (camera -> (H, W, 3) uint8), the (A,) actions, the episode
        index, and scalar signals by name (reward=, intervention=, success=, classifier_prob=, ...; None: skipped)."""
        rr, rec = self.rr, self.rec
        rec.set_time(TIMELINE, sequence=int(step))
        if episode is not None:
            rec.log("episode/index", rr.Scalars(float(episode)))
        for camera, image in (images or {}).items():
            rec.log(camera_path(camera), rr.EncodedImage(contents=jpeg(image), media_type="image/jpeg"))
        for series, values in (("executed", action), ("policy", policy_action), ("base", base_action)):
            if values is None:
                continue
            values = np.asarray(values, np.float64).reshape(-1)
            for name, value in zip(self.names_for(len(values)), values):
                rec.log(action_path(name, series), rr.Scalars(float(value)))
        for name, value in signals.items():
            if value is not None:
                rec.log(signal_path(name), rr.Scalars(float(value)))

    def episode_start(self, step: int, index: int) -> None:
        self.rec.set_time(TIMELINE, sequence=int(step))
        self.rec.log("events", self.rr.TextLog(f"episode {index} starts", level="INFO"))

    def episode_end(self, step: int, index: int, length: int, return_: float, success: bool | None) -> None:
        """At the episode's last step: its length, return and success (None: the env reports none)."""
        self.rec.set_time(TIMELINE, sequence=int(step))
        outcome = "" if success is None else ("success, " if success else "no success, ")
        self.rec.log(
            "events",
            self.rr.TextLog(f"episode {index} ends: {outcome}{length} steps, return {return_:g}", level="INFO"),
        )

    def metrics(self, step: int, group: str, values: Mapping[str, float]) -> None:
        """Scalars under `group/` (learner, eval) at `step`; non-finite and non-numeric values are skipped."""
        self.rec.set_time(TIMELINE, sequence=int(step))
        for name, value in values.items():
            if isinstance(value, (int, float, np.floating, np.integer)) and np.isfinite(value):
                self.rec.log(metric_path(group, name), self.rr.Scalars(float(value)))

    def close(self) -> None:
        """Flush everything to the sinks and end the recording (the .rrd is complete when this returns)."""
        if self.rec is not None:
            self.rec.flush()
            self.rec.disconnect()
            self.rec = None
