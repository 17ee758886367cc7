"""The sim node's camera thread: a frame shows the state captured at its stamp however far physics has moved since,
a frame falling due while one is drawn is dropped and counted, a failed draw is reported and the next one works."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_rl_sim.camera import CameraRig  # noqa: E402
from robot_rl_sim.camera_thread import CameraThread  # noqa: E402
from robot_rl_sim.env import make_task_env  # noqa: E402

NAMES, SIZE = ("front", "wrist"), 64


@pytest.fixture
def env():
    env = make_task_env("pick_cube", obs_mode="state", image_size=SIZE, cameras=NAMES).unwrapped
    env.reset(seed=1)
    yield env
    env.close()


def _move_the_arm(env, steps: int = 8) -> None:
    for _ in range(steps):
        env.step(np.array([1.0, -1.0, -1.0, 1.0], np.float32))


class _HeldCameraThread(CameraThread):
    """Waits for `go` before drawing each frame, as a draw delayed by a loaded machine does."""

    def __init__(self, *args, **kw):
        self.drawing, self.go = threading.Event(), threading.Event()
        super().__init__(*args, **kw)

    def _draw(self, t: float) -> None:
        self.drawing.set()
        assert self.go.wait(10)
        super()._draw(t)


def test_a_frame_shows_the_state_at_its_capture_while_physics_moves_on(env):
    got = []
    reference = CameraRig(env.model, env.data, NAMES, SIZE, SIZE)  # the inline render, for comparison
    cams = _HeldCameraThread(env.model, env.data, NAMES, SIZE, lambda images, t: got.append((images, t)), pytest.fail)
    try:
        want = reference.render()
        t0 = float(env.data.time)
        assert cams.capture(t0)
        assert cams.drawing.wait(10)  # the camera thread has the frame; its draw waits for `go`
        _move_the_arm(env)  # physics moves on meanwhile: the frame must not follow it
        moved = reference.render()
        assert not np.array_equal(moved["wrist"], want["wrist"])  # the arm did move: the check below could fail
        assert not cams.capture(float(env.data.time))  # one frame in flight: this one is dropped
        cams.go.set()
        _wait(lambda: cams.drawn == 1)
        images, t = got[0]
        assert t == t0 and set(images) == set(NAMES)
        for name in NAMES:
            np.testing.assert_array_equal(images[name], want[name])
        assert cams.capture(float(env.data.time))  # free again
        _wait(lambda: cams.drawn == 2)
        np.testing.assert_array_equal(got[1][0]["wrist"], moved["wrist"])
        assert (cams.dropped, cams.failed) == (1, 0)
    finally:
        cams.go.set()
        cams.close()
        reference.close()


def test_a_failed_frame_is_reported_once_per_failure_and_the_next_frame_is_published(env):
    errors, published = [], []
    fail = [True]

    def publish(images, t):
        if fail[0]:
            fail[0] = False
            raise RuntimeError("publisher gone")
        published.append(t)

    cams = CameraThread(env.model, env.data, NAMES, SIZE, publish, on_error=errors.append)
    try:
        assert cams.capture(0.1)
        _wait(lambda: cams.failed == 1)
        assert len(errors) == 1 and "0.100" in errors[0] and "publisher gone" in errors[0]
        assert cams.capture(0.2)
        _wait(lambda: cams.drawn == 1)
        assert published == [0.2]
    finally:
        cams.close()


def test_an_unknown_camera_is_refused_by_the_constructor(env):
    with pytest.raises(ValueError, match="unknown"):
        CameraThread(env.model, env.data, ("front", "ceiling"), SIZE, lambda *a: None, on_error=pytest.fail)


def _wait(cond, timeout_s: float = 10.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if cond():
            return
        event.wait(0.01)
    raise AssertionError("timed out")
