"""A SpaceMouse read directly over HID, for machines without the spacenav driver (spacenavd).

A thin adapter over `pyspacemouse` (imported only here, only when a device is opened; it needs the
hidapi C library: `apt install libhidapi-hidraw0` and `pip install pyspacemouse`, plus read access to
/dev/hidraw*). `read()` returns the axes in the order the `spacemouse_hid` mapping expects,
[x, y, z, roll, pitch, yaw] in [-1, 1], and the button states; None once the device stopped answering.
"""

from __future__ import annotations

INSTALL_HINT = (
    "pip install pyspacemouse (and the hidapi library: sudo apt install libhidapi-hidraw0); "
    "or run the spacenav driver and use robot-rl-teleop-node with mapping:=spacemouse"
)


def import_pyspacemouse():
    """The pyspacemouse module, or a RuntimeError saying how to get it."""
    try:
        import pyspacemouse
    except ImportError as err:  # also: hidapi missing under it
        raise RuntimeError(
            f"the direct SpaceMouse reader needs pyspacemouse, which failed to import ({err}): {INSTALL_HINT}"
        ) from None
    return pyspacemouse


class HidSpaceMouse:
    """One SpaceMouse opened through pyspacemouse."""

    def __init__(self, device: str = ""):
        self._lib = import_pyspacemouse()
        dev = self._lib.open(device=device) if device else self._lib.open()
        if not dev:
            raise RuntimeError(
                "no SpaceMouse found: is it plugged in, and may this user read /dev/hidraw*? (a udev rule "
                'such as KERNEL=="hidraw*", MODE="0664", GROUP="plugdev" grants it)'
            )
        self._dev = dev if hasattr(dev, "read") else self._lib

    def read(self) -> tuple[list[float], list[int]] | None:
        """([x, y, z, roll, pitch, yaw], buttons), or None when the device is gone."""
        try:
            s = self._dev.read()
        except OSError:
            return None
        if s is None:
            return None
        buttons = getattr(s, "buttons", None)
        if buttons is None:
            buttons = getattr(s, "button", [])
        return [float(s.x), float(s.y), float(s.z), float(s.roll), float(s.pitch), float(s.yaw)], [
            int(b) for b in buttons
        ]

    def close(self) -> None:
        close = getattr(self._dev, "close", None)
        if close is not None:
            try:
                close()
            except OSError:
                pass


class HidJoyTeleop:
    """A HID SpaceMouse through a `hid` mapping as a `robot_rl.interfaces.Teleop` (in-process recording)."""

    def __init__(self, mapping, device: str = "", clock=None):
        import time

        from robot_rl.teleop.joy import JoyMapper

        if getattr(mapping, "source", None) != "hid":
            raise ValueError(
                f"mapping {getattr(mapping, 'name', mapping)!r} is not a 'hid' mapping (use spacemouse_hid)"
            )
        self.mapper, self.clock = JoyMapper(mapping), clock or time.monotonic
        self.device = HidSpaceMouse(device)

    def read(self):
        now = self.clock()
        reading = self.device.read()
        if reading is not None:
            self.mapper.on_joy(*reading, now)
        return self.mapper.read(now)

    def close(self) -> None:
        self.device.close()
