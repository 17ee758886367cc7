"""A terminal keyboard as a teleop device: raw termios, non-blocking, works over SSH without a display.

    with TerminalKeyboard(load_mapping("keyboard")) as kb:   # stdin must be a terminal
        cmd = kb.read()                                       # never blocks

A terminal reports presses and auto-repeats but never releases, so a motion key drives its twist
component while it repeats and for `key_hold_s` after the last repeat (the first repeat comes after
the terminal's repeat delay, 250-600 ms); the opposite key takes over the component at once, and
`stop` (space) zeroes all motion. `takeover` (t) toggles engaged; with `engage_on_motion` a motion
key engages too. Keys for the gripper latch a closing (close 1, open 0, toggle); success / failure /
rerecord are events. Ctrl-C still interrupts (signals stay on). End of input (the terminal went away)
reads as a disconnect.

`KeyboardState` is the same logic without a terminal (key names and times in, commands out);
`decode_keys` turns terminal bytes into key names (arrows, page up/down and friends included).
"""

from __future__ import annotations

import os
import select
import sys
import termios
import time

import numpy as np

from robot_rl.interfaces import Teleop, TeleopCommand
from robot_rl.teleop.joy import EngageEdges
from robot_rl.teleop.mapping import TWIST_AXES, KeyboardMapping, load_mapping

_NAMED = {b" ": "space", b"\r": "enter", b"\n": "enter", b"\t": "tab", b"\x7f": "backspace"}
_ESCAPES = {  # xterm / VT220 sequences after ESC
    b"[A": "up",
    b"[B": "down",
    b"[C": "right",
    b"[D": "left",
    b"OA": "up",
    b"OB": "down",
    b"OC": "right",
    b"OD": "left",
    b"[5~": "pageup",
    b"[6~": "pagedown",
    b"[H": "home",
    b"[F": "end",
    b"OH": "home",
    b"OF": "end",
    b"[1~": "home",
    b"[4~": "end",
    b"[2~": "insert",
    b"[3~": "delete",
}


def decode_keys(data: bytes) -> list[str]:
    """Terminal bytes -> key names: printable characters as themselves, escape sequences by name, a lone ESC as "esc"."""
    keys, i = [], 0
    while i < len(data):
        byte = data[i : i + 1]
        if byte == b"\x1b":
            for seq, name in _ESCAPES.items():
                if data.startswith(seq, i + 1):
                    keys.append(name)
                    i += 1 + len(seq)
                    break
            else:
                keys.append("esc")
                i += 1
            continue
        if byte in _NAMED:
            keys.append(_NAMED[byte])
        elif 32 < data[i] < 127:
            keys.append(byte.decode())
        i += 1
    return keys


class KeyboardState:
    """Key presses (name, time) -> TeleopCommand, by a KeyboardMapping. Unbound keys are ignored."""

    def __init__(self, mapping: KeyboardMapping):
        self.mapping = mapping
        self._motion: dict[str, tuple[float, float]] = {}  # component -> (value, time of the last press)
        self._toggled = False
        self._gripper: float | None = None
        self._connected = True
        self._edges = EngageEdges()

    def press(self, key: str, t_s: float) -> None:
        binding = self.mapping.motion.get(key)
        if binding is not None:
            self._motion[binding.component] = (binding.value, t_s)
            return
        action = self.mapping.actions.get(key)
        if action == "takeover":
            self._toggled = not self._toggled
        elif action == "stop":
            self._motion.clear()
        elif action == "gripper_close":
            self._gripper = 1.0
        elif action == "gripper_open":
            self._gripper = 0.0
        elif action == "gripper_toggle":
            self._gripper = 0.0 if (self._gripper or 0.0) >= 0.5 else 1.0
        elif action is not None:  # success / failure / rerecord
            self._edges.add(action)

    def disconnect(self) -> None:
        """The terminal is gone: no motion, nothing engaged, from now on."""
        self._connected, self._motion, self._toggled = False, {}, False

    def read(self, now_s: float) -> TeleopCommand:
        twist = np.zeros(6)
        for component, (value, t_press) in list(self._motion.items()):
            if now_s - t_press <= self.mapping.key_hold_s:
                twist[TWIST_AXES.index(component)] = value
            else:
                del self._motion[component]
        engaged = self._connected and (self._toggled or (self.mapping.engage_on_motion and bool(np.any(twist))))
        events = self._edges.events(engaged, connected=self._connected)
        return TeleopCommand(twist, self._gripper, engaged, events, t_capture=now_s, connected=self._connected)


class TerminalKeyboard(Teleop):
    """Reads a terminal in cbreak mode (no echo, no line buffering, signals kept); restores it on close."""

    def __init__(self, mapping: KeyboardMapping, fd: int | None = None, clock=time.monotonic):
        self.fd = sys.stdin.fileno() if fd is None else fd
        if not os.isatty(self.fd):
            raise RuntimeError(
                "the keyboard teleop needs a terminal on stdin (run it in a terminal, over ssh -t, "
                "or in tmux), not a pipe or a file"
            )
        self.state = KeyboardState(mapping)
        self.clock = clock
        self._saved = termios.tcgetattr(self.fd)
        raw = termios.tcgetattr(self.fd)
        raw[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: key by key, no echo; ISIG kept so Ctrl-C works
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 0, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, raw)

    def poll(self) -> list[str]:
        """Feed every key waiting on the terminal to the state; returns their names."""
        keys: list[str] = []
        while select.select([self.fd], [], [], 0.0)[0]:
            try:
                data = os.read(self.fd, 1024)
            except OSError:  # the terminal hung up
                data = b""
            if not data:  # readable but empty: end of input
                self.state.disconnect()
                break
            keys += decode_keys(data)
        now = self.clock()
        for key in keys:
            self.state.press(key, now)
        return keys

    def read(self) -> TeleopCommand:
        self.poll()
        return self.state.read(self.clock())

    def close(self) -> None:
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self._saved)
            except termios.error:
                pass  # the terminal is already gone
            self._saved = None

    def __enter__(self) -> TerminalKeyboard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def help_text(mapping: KeyboardMapping) -> str:
    """One line per bound key, for the terminal."""
    lines = [f"  {key:>8}  {b.component} {'+' if b.value > 0 else '-'}" for key, b in mapping.motion.items()]
    lines += [f"  {key:>8}  {action}" for key, action in mapping.actions.items()]
    return "keys:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m robot_rl.teleop.keyboard`: try a keyboard mapping without ROS (a status line; JSON lines with --jsonl)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m robot_rl.teleop.keyboard",
        description="Read the terminal keyboard as a teleop device and show (or log) the commands it produces, "
        "without ROS. Ctrl-C ends it and restores the terminal.",
    )
    parser.add_argument(
        "--mapping", default="keyboard", help="a default mapping name or a YAML path (default: keyboard)"
    )
    parser.add_argument("--rate-hz", type=float, default=20.0, help="commands per second (default: 20)")
    parser.add_argument("--jsonl", default="", help="append one JSON line per command to this file")
    args = parser.parse_args(argv)
    mapping = load_mapping(args.mapping)
    if not isinstance(mapping, KeyboardMapping):
        parser.error(f"--mapping {args.mapping} is a {mapping.source} mapping; give a keyboard one")
    log = open(args.jsonl, "a", buffering=1) if args.jsonl else None  # noqa: SIM115 (closed below)
    try:
        with TerminalKeyboard(mapping) as kb:
            print(help_text(mapping) + "\nCtrl-C quits.", file=sys.stderr)
            while True:
                cmd = kb.read()
                line = {
                    "t": cmd.t_capture,
                    "twist": cmd.twist.tolist(),
                    "gripper": cmd.gripper,
                    "engaged": cmd.engaged,
                    "events": list(cmd.events),
                    "connected": cmd.connected,
                }
                if log is not None:
                    log.write(json.dumps(line) + "\n")
                twist = " ".join(f"{v:+.0f}" for v in cmd.twist)
                print(
                    f"\rtwist [{twist}] gripper {cmd.gripper} engaged {cmd.engaged:d} {' '.join(cmd.events):<20}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
                if not cmd.connected:
                    return 1
                time.sleep(1.0 / args.rate_hz)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 0
    except RuntimeError as err:
        print(f"keyboard teleop: {err}", file=sys.stderr)
        return 2
    finally:
        if log is not None:
            log.close()


if __name__ == "__main__":
    sys.exit(main())
