"""`JoyMapper`: a device's raw axes and buttons -> `TeleopCommand`, with edge-detected events and disconnects.

    mapper = JoyMapper(load_mapping("xbox"))
    mapper.on_joy(msg.axes, msg.buttons, t_s=now)      # every sensor_msgs/Joy (or HID reading)
    cmd = mapper.read(now_s)                            # at the control rate

SpaceMouse through spacenav delivers axes and buttons on two topics: `on_axes` (spacenav/twist as
[lin x, y, z, ang x, y, z]) and `on_buttons` (spacenav/joy). Any message counts as a heartbeat; when
none arrived for `mapping.timeout_s`, `read` reports `connected=False`, nothing engaged, no motion,
and forgets toggles, held buttons and the gripper latch: a returning device starts from rest.

Events: `success` / `failure` / `rerecord` on a button's press; `take_over` / `release` when
`engaged` changes between two reads (not on a disconnect: that is `connected` going False).
Events are kept until the next `read`, so a press shorter than a control period is not lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop.mapping import TWIST_AXES, JoyMapping


def apply_deadband(value: float, deadband: float) -> float:
    """0 inside the deadband; outside it, rescaled so the output starts at 0 and still reaches +-1."""
    magnitude = abs(value)
    if magnitude <= deadband:
        return 0.0
    return math.copysign(min((magnitude - deadband) / (1.0 - deadband), 1.0), value)


class EngageEdges:
    """Turns a sequence of `engaged` readings into take_over / release events, and collects pending events."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self._engaged = False

    def add(self, event: str) -> None:
        if event not in self.pending:
            self.pending.append(event)

    def events(self, engaged: bool, connected: bool) -> tuple[str, ...]:
        """Pending events plus the engage edge since the last call (none when disconnected); clears them."""
        if connected and engaged != self._engaged:
            self.add("take_over" if engaged else "release")
        self._engaged = engaged and connected
        out, self.pending = tuple(self.pending), []
        return out


class JoyMapper:
    """Maps one device's axes and buttons with a `JoyMapping`. Times are seconds on the reader's clock."""

    def __init__(self, mapping: JoyMapping):
        self.mapping = mapping
        self._axes: list[float] = []
        self._buttons: dict[int, bool] = {}
        self._toggled = False
        self._gripper: float | None = None  # latched closing in [0, 1] once a gripper button was pressed
        self._last_msg_s: float | None = None
        self._edges = EngageEdges()
        self._max_axis = max((s.axis for s in mapping.twist.values() if s.axis is not None), default=-1)
        self._max_button = max(mapping.buttons_used(), default=-1)

    # --- input ------------------------------------------------------------------------------
    def on_joy(self, axes: Sequence[float], buttons: Sequence[int], t_s: float) -> None:
        """One message carrying both axes and buttons (sensor_msgs/Joy of a gamepad, a HID reading)."""
        self.on_axes(axes, t_s)
        self.on_buttons(buttons, t_s)

    def on_axes(self, axes: Sequence[float], t_s: float) -> None:
        values = [float(a) for a in axes]
        if len(values) <= self._max_axis:
            raise ValueError(
                f"mapping {self.mapping.name!r} reads axis {self._max_axis} but the device sent "
                f"{len(values)} axes; is this the right mapping for the device?"
            )
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"device axes must be finite, got {values}")
        self._axes = values
        self._last_msg_s = t_s

    def on_buttons(self, buttons: Sequence[int], t_s: float) -> None:
        self._last_msg_s = t_s
        if self.mapping.button_report == "last_event":  # spacenav/joy: only the last entry is news
            if buttons:
                self._set_button(len(buttons) - 1, bool(buttons[-1]))
            return
        if len(buttons) <= self._max_button:
            raise ValueError(
                f"mapping {self.mapping.name!r} reads button {self._max_button} but the device sent "
                f"{len(buttons)} buttons; is this the right mapping for the device?"
            )
        for index, value in enumerate(buttons):
            self._set_button(index, bool(value))

    def _set_button(self, index: int, pressed: bool) -> None:
        was = self._buttons.get(index, False)
        self._buttons[index] = pressed
        if pressed and not was:
            self._on_press(index)

    def _on_press(self, index: int) -> None:
        m = self.mapping
        if index == m.toggle_button:
            self._toggled = not self._toggled
        if index == m.gripper_close:
            self._gripper = 1.0
        if index == m.gripper_open:
            self._gripper = 0.0
        if index == m.gripper_toggle:
            self._gripper = 0.0 if (self._gripper or 0.0) >= 0.5 else 1.0
        for event, button in m.events.items():
            if index == button:
                self._edges.add(event)

    # --- output -----------------------------------------------------------------------------
    def connected(self, now_s: float) -> bool:
        return self._last_msg_s is not None and now_s - self._last_msg_s <= self.mapping.timeout_s

    def twist(self) -> np.ndarray:
        """(6,) the mapped, clipped, deadbanded twist of the latest axes (base frame, normalised)."""
        m, out = self.mapping, np.zeros(6)
        button_list = [int(self._buttons.get(i, False)) for i in range(self._max_button + 1)]
        for name, source in m.twist.items():
            raw = float(np.clip(source.value(self._axes, button_list), -1.0, 1.0))
            out[TWIST_AXES.index(name)] = apply_deadband(raw, m.deadband)
        return out

    def read(self, now_s: float) -> TeleopCommand:
        """The command now: motion, gripper, engaged, the events since the last read, connected."""
        if not self.connected(now_s):
            self._axes, self._buttons, self._toggled, self._gripper = [], {}, False, None
            events = self._edges.events(False, connected=False)
            return TeleopCommand(np.zeros(6), None, False, events, t_capture=now_s, connected=False)
        m = self.mapping
        twist = self.twist()
        held = m.hold_button is not None and self._buttons.get(m.hold_button, False)
        engaged = bool(held or self._toggled or (m.engage_on_motion and np.any(twist != 0.0)))
        events = self._edges.events(engaged, connected=True)
        return TeleopCommand(twist, self._gripper, engaged, events, t_capture=now_s, connected=True)
