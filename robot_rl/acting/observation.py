"""Observation assembly from the freshest sample of each robot input, with capture stamps and staleness.

The ROS actor converts each message to numbers and hands it over with its stamp (`put`): the header
stamp (capture time) for stamped messages, the ROS-clock receipt time for unstamped ones
(`task/success`, `task/object_state`). Times are ROS-clock seconds: simulation time under
`use_sim_time`, so staleness is judged in the robot's own time.

Inputs are named by their (relative) topic names, `INPUT_*` below and `<cam>/image_raw`:
  joint_states       q_rad (7,)                      ee_pose        (pos_m (3,), quat_wxyz (4,))
  ee_twist           linvel_m_s (3,)                 gripper_state  width_m (float)
  task/success       bool                            task/object_state  float32 (object dim,)  [state mode]
  <cam>/image_raw    uint8 (H, W, 3)  [pixels mode]

`assemble()` builds the gym env's observation (`robot_rl.cell`) and the info the episode
recorder reads: `t_capture` (the joint_states stamp: when the robot state was captured),
`t_capture_<cam>` per camera and `success`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_rl import keys
from robot_rl.cell import ActorLayout, proprio

INPUT_JOINTS = "joint_states"
INPUT_POSE = "ee_pose"
INPUT_TWIST = "ee_twist"
INPUT_GRIPPER = "gripper_state"
INPUT_SUCCESS = "task/success"
INPUT_OBJECT = "task/object_state"


def image_input(camera: str) -> str:
    return f"{camera}/image_raw"


@dataclass(frozen=True)
class Sample:
    value: Any  # converted message content (see the module docstring)
    stamp_s: float  # ROS-clock seconds: capture (header stamp) or receipt time


@dataclass(frozen=True)
class StaleInput:
    name: str  # input (relative topic) name
    age_s: float  # now - stamp of its freshest sample; inf when it never arrived

    def describe(self) -> str:
        return f"{self.name} never arrived" if math.isinf(self.age_s) else f"{self.name} is {self.age_s:.3f} s old"


class ObservationAssembler:
    """Keeps the freshest sample of every required input and builds observations from them."""

    def __init__(self, layout: ActorLayout, max_staleness_s: float):
        if not (math.isfinite(max_staleness_s) and max_staleness_s > 0):
            raise ValueError(f"max_staleness_s must be positive seconds, got {max_staleness_s!r}")
        self.layout = layout
        self.max_staleness_s = max_staleness_s
        names = [INPUT_JOINTS, INPUT_POSE, INPUT_TWIST, INPUT_GRIPPER]
        names += [INPUT_SUCCESS] if layout.success_from == "topic" else []  # else only a person's keys judge
        names += [INPUT_OBJECT] if layout.obs_mode == "state" else []
        names += [image_input(c) for c in layout.image_cameras]
        self.required: tuple[str, ...] = tuple(names)
        self._latest: dict[str, Sample] = {}

    def put(self, name: str, value: Any, stamp_s: float) -> None:
        """Offer a sample; kept if it is at least as fresh as the one held. Raises ValueError for a wrong shape."""
        if name not in self.required:
            raise ValueError(f"{name!r} is not an input of this actor; its inputs are {list(self.required)}")
        self._check(name, value)
        held = self._latest.get(name)
        if held is None or stamp_s >= held.stamp_s:
            if isinstance(value, np.ndarray) and not value.flags.writeable:  # e.g. a view of a message's bytes
                value = value.copy()
            self._latest[name] = Sample(value, float(stamp_s))

    def stale(self, now_s: float) -> list[StaleInput]:
        """Required inputs whose freshest sample is older than max_staleness_s at `now_s` (or missing)."""
        out = []
        for name in self.required:
            sample = self._latest.get(name)
            age = math.inf if sample is None else now_s - sample.stamp_s
            if age > self.max_staleness_s:
                out.append(StaleInput(name, age))
        return out

    def fresh_since(self, t_s: float) -> bool:
        """Every required input has a sample stamped after `t_s` (e.g. after a reset finished)."""
        return all(name in self._latest and self._latest[name].stamp_s > t_s for name in self.required)

    def waiting_for(self, t_s: float) -> list[str]:
        """Inputs that have no sample stamped after `t_s`."""
        return [n for n in self.required if n not in self._latest or self._latest[n].stamp_s <= t_s]

    def assemble(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """-> (observation as the gym env's, info {t_capture, t_capture_<cam>, success}). All inputs must be present."""
        missing = [n for n in self.required if n not in self._latest]
        if missing:
            raise RuntimeError(f"cannot assemble an observation: no sample yet of {missing}")
        get = lambda name: self._latest[name].value  # noqa: E731
        pos_m, quat_wxyz = get(INPUT_POSE)
        state = proprio(pos_m, quat_wxyz, get(INPUT_TWIST), get(INPUT_GRIPPER), get(INPUT_JOINTS))
        if self.layout.obs_mode == "state":
            state = np.concatenate([state, get(INPUT_OBJECT)]).astype(np.float32)
        obs = {keys.STATE: state}  # (D,)
        info: dict[str, Any] = {
            keys.T_CAPTURE: self._latest[INPUT_JOINTS].stamp_s,
            "success": INPUT_SUCCESS in self.required and bool(get(INPUT_SUCCESS)),
        }
        for cam in self.layout.image_cameras:
            sample = self._latest[image_input(cam)]
            obs[keys.image_key(cam)] = sample.value  # (H, W, 3) uint8
            info[keys.t_capture_key(cam)] = sample.stamp_s
        return obs, info

    def _check(self, name: str, value: Any) -> None:
        size = self.layout.image_size
        if name == INPUT_JOINTS:
            _shape(name, value, (len(self.layout.joint_names),))
        elif name == INPUT_POSE:
            _shape(name + " position", value[0], (3,))
            _shape(name + " orientation", value[1], (4,))
        elif name == INPUT_TWIST:
            _shape(name, value, (3,))
        elif name == INPUT_OBJECT:
            _shape(name, value, (self.layout.object_dim,))
        elif name.endswith("/image_raw"):
            img = np.asarray(value)
            if img.dtype != np.uint8 or img.shape != (size, size, 3):
                raise ValueError(
                    f"{name}: image {img.shape} {img.dtype}; this actor expects ({size}, {size}, 3) uint8 "
                    "(set the camera's or the actor's image_size to match)"
                )


def _shape(name: str, value: Any, shape: tuple[int, ...]) -> None:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape}, expected {shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: non-finite values {arr.tolist()}")
