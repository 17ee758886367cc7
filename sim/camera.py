"""Cameras of the MuJoCo cell: `CameraRig` renders them, `MujocoCamera` is one behind the Camera interface."""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from robot_rl.interfaces import Camera, CameraSpec, Frame


def intrinsics(model: mujoco.MjModel, camera: str, width: int, height: int) -> tuple[float, ...]:
    """Pinhole K (row major, 9 numbers) of a MuJoCo camera rendered at width x height (square pixels)."""
    fovy_rad = math.radians(float(model.cam_fovy[model.camera(camera).id]))
    f_px = 0.5 * height / math.tan(0.5 * fovy_rad)
    return (f_px, 0.0, 0.5 * width, 0.0, f_px, 0.5 * height, 0.0, 0.0, 1.0)


def camera_spec(model: mujoco.MjModel, name: str, width: int, height: int, rate_hz: float) -> CameraSpec:
    """The CameraSpec of a MuJoCo camera rendered at width x height (frame `<name>_optical_frame`)."""
    return CameraSpec(
        name=name,
        width=int(width),
        height=int(height),
        rate_hz=float(rate_hz),
        K=intrinsics(model, name, width, height),
        frame_id=f"{name}_optical_frame",
    )


class CameraRig:
    """Renders a model's named cameras side by side in one offscreen pass with a single pixel read-back.

    On software EGL (llvmpipe) reading pixels back costs about as much as drawing, so one read for
    all cameras instead of one per camera saves a good part of a pixel-observation step.
    The model's offscreen buffer (`<visual><global offwidth offheight>`) must hold all cameras in a row.
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, names: Sequence[str], width: int, height: int):
        valid = [model.camera(i).name for i in range(model.ncam)]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise ValueError(f"cameras {list(names)}: unknown {unknown}; choose one or more of {valid}")
        row_width = width * len(names)
        if row_width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(
                f"{len(names)} cameras of {width}x{height} need an offscreen buffer of at least {row_width}x{height}, "
                f"the model has {model.vis.global_.offwidth}x{model.vis.global_.offheight} (scene.build_model offscreen_width, offscreen_height)"
            )
        self.model, self.data, self.width, self.height = model, data, int(width), int(height)
        self.names = tuple(names)
        self._cam_ids = {n: model.camera(n).id for n in names}
        self._gl = mujoco.GLContext(row_width, height)
        self._gl.make_current()
        self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        self._scenes = {n: mujoco.MjvScene(model, maxgeom=max(4 * model.ngeom, 100)) for n in names}
        self._option, self._perturb = mujoco.MjvOption(), mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED

    def render(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """name -> (height, width, 3) uint8 RGB image of the current state (fresh arrays)."""
        self.capture(names)
        return self.draw(names)

    def capture(self, names: Sequence[str] | None = None) -> None:
        """Copy the current state into each camera's scene (CPU only, no GL): what `draw` draws. Any thread, but not
        while `data` is being stepped or a `draw` is reading the scenes."""
        for name in self.names if names is None else names:
            self._camera.fixedcamid = self._cam_ids[name]
            mujoco.mjv_updateScene(
                self.model,
                self.data,
                self._option,
                self._perturb,
                self._camera,
                mujoco.mjtCatBit.mjCAT_ALL,
                self._scenes[name],
            )

    def draw(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """name -> image of the scenes the last `capture` took, drawn and read back in one pass. On the thread that
        made this rig (its GL context is current there); it does not read `data`, so physics may step meanwhile."""
        names = self.names if names is None else tuple(names)
        w, h = self.width, self.height
        self._gl.make_current()
        for k, name in enumerate(names):
            mujoco.mjr_render(mujoco.MjrRect(k * w, 0, w, h), self._scenes[name], self._ctx)
        row = np.empty((h, w * len(names), 3), dtype=np.uint8)
        mujoco.mjr_readPixels(row, None, mujoco.MjrRect(0, 0, w * len(names), h), self._ctx)
        row = row[::-1]  # OpenGL rows run bottom-up
        return {name: np.ascontiguousarray(row[:, k * w : (k + 1) * w]) for k, name in enumerate(names)}

    def close(self) -> None:
        if self._gl is not None:
            self._gl.make_current()
            self._ctx.free()
            self._gl.free()
            self._gl = None


class MujocoCamera(Camera):
    """One camera of a `CameraRig`; `t_capture` is the simulation time of the frame."""

    def __init__(self, rig: CameraRig, name: str, rate_hz: float):
        if name not in rig.names:
            raise ValueError(f"no camera {name!r} in this rig; choose one of {list(rig.names)}")
        self._rig, self._name = rig, name
        self.spec = camera_spec(rig.model, name, rig.width, rig.height, rate_hz)

    def read(self) -> Frame:
        """Render the current state (a fresh array, safe to keep)."""
        image = self._rig.render((self._name,))[self._name]
        return Frame(image=image, t_capture=float(self._rig.data.time))
