"""Device mappings: which axis or button of a teleop device does what, as one YAML file per device.

    mapping = load_mapping("xbox")                 # a default file in robot_rl/teleop/mappings/
    mapping = load_mapping("/etc/robot/my_pad.yaml")

Two kinds, told apart by `source`:

- `joy` / `spacenav` / `hid` -> `JoyMapping`: a device that reports numbered axes and buttons (a
  sensor_msgs/Joy from `game_controller_node`/`joy_node`, the 6 axes of `spacenav/twist`, or the
  6 axes of a SpaceMouse read directly over HID). Each twist component (vx vy vz wx wy wz, base
  frame, normalised) comes from one axis or a (positive, negative) button pair, times `scale`
  (a negative scale flips the direction), clipped to [-1, 1]; then a deadband is applied.
- `keyboard` -> `KeyboardMapping`: terminal keys; a motion key drives one twist component while
  it repeats (key auto-repeat), see `robot_rl.teleop.keyboard`.

Engaging (the person takes over from the policy): motion above the deadband (`engage.on_motion`),
a held button (`engage.hold_button`, a dead-man switch) or a toggled one (`engage.toggle_button`),
in any combination. Events `success`, `failure`, `rerecord` fire on a button's press.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TWIST_AXES = ("vx", "vy", "vz", "wx", "wy", "wz")  # order of TeleopCommand.twist
JOY_SOURCES = ("joy", "spacenav", "hid")
BUTTON_REPORTS = ("state", "last_event")
EPISODE_EVENTS = ("success", "failure", "rerecord")
KEY_ACTIONS = ("takeover", "stop", "gripper_close", "gripper_open", "gripper_toggle") + EPISODE_EVENTS
MAPPINGS_DIR = Path(__file__).parent / "mappings"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the field and what would be valid."""


@dataclass(frozen=True)
class AxisSource:
    """Where one twist component comes from: an axis, or a (positive, negative) pair of buttons."""

    axis: int | None = None  # index into the device's axes
    buttons: tuple[int, int] | None = None  # (button giving +1, button giving -1), e.g. a d-pad pair
    scale: float = 1.0  # multiplies the raw value before clipping to [-1, 1]; negative flips the sign

    def value(self, axes: list[float], buttons: list[int]) -> float:
        if self.axis is not None:
            raw = axes[self.axis] if self.axis < len(axes) else 0.0
        else:
            pos, neg = self.buttons
            raw = float(_pressed(buttons, pos)) - float(_pressed(buttons, neg))
        return raw * self.scale


def _pressed(buttons: list[int], index: int | None) -> bool:
    return index is not None and index < len(buttons) and bool(buttons[index])


@dataclass(frozen=True)
class JoyMapping:
    """A device with numbered axes and buttons (gamepad, SpaceMouse)."""

    name: str  # e.g. "xbox"
    source: str  # joy | spacenav | hid: which topics or driver deliver its axes and buttons
    twist: dict[str, AxisSource]  # twist component (TWIST_AXES) -> its source; missing components stay 0
    deadband: float = 0.1  # |value| below this reads as 0; above it the value is rescaled to start at 0
    engage_on_motion: bool = True  # motion above the deadband engages
    hold_button: int | None = None  # engaged while this button is held (dead-man switch)
    toggle_button: int | None = None  # each press flips engaged on/off
    gripper_close: int | None = None  # press: close the gripper
    gripper_open: int | None = None  # press: open the gripper
    gripper_toggle: int | None = None  # press: open if closed, close if open
    events: dict[str, int] = field(default_factory=dict)  # success/failure/rerecord -> button (fires on press)
    button_report: str = "state"  # "state": every message has every button; "last_event": a message carries
    #                               one button change as its last entry (spacenav/joy), no entries = no change
    timeout_s: float = 0.5  # no device message for this long -> disconnected

    def buttons_used(self) -> list[int]:
        used = [self.hold_button, self.toggle_button, self.gripper_close, self.gripper_open, self.gripper_toggle]
        used += list(self.events.values())
        used += [b for s in self.twist.values() if s.buttons for b in s.buttons]
        return [b for b in used if b is not None]


@dataclass(frozen=True)
class KeyBinding:
    """A motion key: drives one twist component to `value` while it repeats."""

    component: str  # one of TWIST_AXES
    value: float  # normalised speed in [-1, 1]


@dataclass(frozen=True)
class KeyboardMapping:
    """Terminal keys. Key names: a printable character, or space, enter, tab, backspace, esc, up, down, left,
    right, pageup, pagedown, home, end, insert, delete."""

    name: str  # "keyboard"
    motion: dict[str, KeyBinding]  # key -> twist component and speed
    actions: dict[str, str]  # key -> one of KEY_ACTIONS
    key_hold_s: float = 0.6  # a motion key keeps driving this long after its last repeat (covers the
    #                          terminal's auto-repeat delay, typically 250-600 ms)
    engage_on_motion: bool = True  # a motion key engages; "takeover" toggles engaged regardless
    timeout_s: float = 0.5  # receivers of the keyboard node's heartbeat declare it gone after this long
    source: str = "keyboard"


def _check_keys(where: str, data: dict, allowed: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise MappingError(f"{where} must be a mapping of {list(allowed)}, got {data!r}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise MappingError(f"{where} has unknown fields {unknown}; valid fields are {list(allowed)}")


def _index(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(f"{where} must be a button/axis index >= 0 or null, got {value!r}")
    return value


def _number(where: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise MappingError(f"{where} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _axis_source(where: str, data: Any) -> AxisSource:
    _check_keys(where, data, ("axis", "buttons", "scale"))
    scale = _number(f"{where}.scale", data.get("scale", 1.0))
    if ("axis" in data) == ("buttons" in data):
        raise MappingError(f"{where} needs exactly one of 'axis: INDEX' or 'buttons: [POSITIVE, NEGATIVE]', got {data}")
    if "axis" in data:
        return AxisSource(axis=_index(f"{where}.axis", data["axis"]), scale=scale)
    pair = data["buttons"]
    if not (isinstance(pair, list) and len(pair) == 2):
        raise MappingError(f"{where}.buttons must be [POSITIVE, NEGATIVE] button indices, got {pair!r}")
    return AxisSource(
        buttons=(_index(f"{where}.buttons[0]", pair[0]), _index(f"{where}.buttons[1]", pair[1])), scale=scale
    )


def joy_mapping_from_dict(data: dict, name: str = "") -> JoyMapping:
    _check_keys(
        "mapping",
        data,
        ("name", "source", "twist", "deadband", "engage", "gripper", "events", "button_report", "timeout_s"),
    )
    name = str(data.get("name", name))
    twist = data.get("twist") or {}
    _check_keys("twist", twist, TWIST_AXES)
    engage, gripper, events = data.get("engage") or {}, data.get("gripper") or {}, data.get("events") or {}
    _check_keys("engage", engage, ("on_motion", "hold_button", "toggle_button"))
    _check_keys("gripper", gripper, ("close", "open", "toggle"))
    _check_keys("events", events, EPISODE_EVENTS)
    report = data.get("button_report", "state")
    if report not in BUTTON_REPORTS:
        raise MappingError(f"button_report={report!r}; choose one of {BUTTON_REPORTS}")
    mapping = JoyMapping(
        name=name,
        source=data["source"],
        twist={k: _axis_source(f"twist.{k}", v) for k, v in twist.items()},
        deadband=_number("deadband", data.get("deadband", 0.1), 0.0, 0.95),
        engage_on_motion=bool(engage.get("on_motion", True)),
        hold_button=_index("engage.hold_button", engage.get("hold_button")),
        toggle_button=_index("engage.toggle_button", engage.get("toggle_button")),
        gripper_close=_index("gripper.close", gripper.get("close")),
        gripper_open=_index("gripper.open", gripper.get("open")),
        gripper_toggle=_index("gripper.toggle", gripper.get("toggle")),
        events={k: _index(f"events.{k}", v) for k, v in events.items() if v is not None},
        button_report=report,
        timeout_s=_number("timeout_s", data.get("timeout_s", 0.5), 1e-3),
    )
    if not (mapping.engage_on_motion or mapping.hold_button is not None or mapping.toggle_button is not None):
        raise MappingError(
            f"mapping {name!r} can never engage: set engage.on_motion: true, a hold_button or a toggle_button"
        )
    return mapping


def keyboard_mapping_from_dict(data: dict, name: str = "") -> KeyboardMapping:
    _check_keys("mapping", data, ("name", "source", "motion", "actions", "key_hold_s", "engage_on_motion", "timeout_s"))
    motion = {}
    for key, spec in (data.get("motion") or {}).items():
        if not (isinstance(spec, list) and len(spec) == 2 and spec[0] in TWIST_AXES):
            raise MappingError(
                f"motion.{key} must be [COMPONENT, SPEED] with COMPONENT in {list(TWIST_AXES)}, got {spec!r}"
            )
        motion[str(key)] = KeyBinding(spec[0], _number(f"motion.{key}[1]", spec[1], -1.0, 1.0))
    actions = {str(k): v for k, v in (data.get("actions") or {}).items()}
    bad = {k: v for k, v in actions.items() if v not in KEY_ACTIONS}
    if bad:
        raise MappingError(f"actions {bad} are not actions; choose from {list(KEY_ACTIONS)}")
    clash = sorted(set(motion) & set(actions))
    if clash:
        raise MappingError(f"keys {clash} are bound to both a motion and an action; bind each key once")
    return KeyboardMapping(
        name=str(data.get("name", name)),
        motion=motion,
        actions=actions,
        key_hold_s=_number("key_hold_s", data.get("key_hold_s", 0.6), 0.01, 5.0),
        engage_on_motion=bool(data.get("engage_on_motion", True)),
        timeout_s=_number("timeout_s", data.get("timeout_s", 0.5), 1e-3),
    )


def default_mappings() -> list[str]:
    """Names of the mapping files shipped in robot_rl/teleop/mappings/."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(name_or_path: str | Path) -> JoyMapping | KeyboardMapping:
    """A default mapping by name ("xbox", "ps4", "ps5", "spacemouse", "spacemouse_hid", "keyboard") or a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MAPPINGS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise MappingError(
                f"no default mapping {str(name_or_path)!r}; choose one of {default_mappings()} or give a .yaml path"
            )
    if not path.is_file():
        raise MappingError(f"mapping file {path} does not exist")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "source" not in data:
        raise MappingError(f"{path}: a mapping needs 'source: <one of {[*JOY_SOURCES, 'keyboard']}>' at the top level")
    try:
        if data["source"] == "keyboard":
            return keyboard_mapping_from_dict(data, path.stem)
        if data["source"] in JOY_SOURCES:
            return joy_mapping_from_dict(data, path.stem)
    except MappingError as err:
        raise MappingError(f"{path}: {err}") from None
    raise MappingError(f"{path}: source={data['source']!r}; choose one of {[*JOY_SOURCES, 'keyboard']}")
