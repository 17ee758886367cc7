"""Device mappings (the default files), the JoyMapper, keyboard key handling and the teleop link, without ROS."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.teleop import JoyMapper, MappingError, load_mapping
from robot_rl.teleop.joy import apply_deadband
from robot_rl.teleop.keyboard import KeyboardState, decode_keys
from robot_rl.teleop.link import EventCounts, TeleopLink
from robot_rl.teleop.mapping import default_mappings


def test_every_default_mapping_loads_and_the_common_devices_are_there():
    names = default_mappings()
    assert {"xbox", "ps4", "ps5", "spacemouse", "spacemouse_hid", "keyboard"} <= set(names)
    for name in names:
        assert load_mapping(name).name == name


@pytest.mark.parametrize("pad", ["xbox", "ps4", "ps5"])
def test_gamepad_sticks_map_to_base_frame_motion_through_game_controller_node_indices(pad):
    mapper = JoyMapper(load_mapping(pad))
    axes, buttons = [0.0] * 6, [0] * 21
    axes[1], axes[0], axes[3], axes[2] = 1.0, -1.0, 0.5, 0.0  # left stick up + right, right stick half up
    buttons[11] = 1  # d-pad up: pitch
    mapper.on_joy(axes, buttons, t_s=1.0)
    cmd = mapper.read(1.0)
    db = mapper.mapping.deadband
    np.testing.assert_allclose(cmd.twist, [1.0, -1.0, (0.5 - db) / (1 - db), 0.0, 1.0, 0.0], atol=1e-6)
    assert cmd.engaged and cmd.connected and cmd.gripper is None


def test_the_deadband_zeroes_drift_and_rescales_the_rest_to_reach_full_scale():
    assert apply_deadband(0.09, 0.1) == 0.0
    assert apply_deadband(-0.55, 0.1) == pytest.approx(-0.5)
    assert apply_deadband(1.0, 0.1) == pytest.approx(1.0)


def test_spacenav_twist_and_its_one_event_per_message_buttons_map_to_motion_and_gripper():
    mapper = JoyMapper(load_mapping("spacemouse"))
    mapper.on_axes([0.5, 0.0, -0.2, 0.0, 0.0, 0.05], t_s=0.0)  # spacenav/twist: lin xyz, ang xyz (driver-normalised)
    cmd = mapper.read(0.0)
    # scale 1.4 then the 0.1 deadband: 0.7 -> 0.6667, -0.28 -> -0.2, 0.07 -> 0
    np.testing.assert_allclose(cmd.twist, [0.6 / 0.9, 0.0, -0.18 / 0.9, 0.0, 0.0, 0.0], atol=1e-6)
    assert cmd.engaged
    mapper.on_buttons([0, 1], t_s=0.01)  # spacenav/joy: right button pressed (index 0 is filler)
    assert mapper.read(0.01).gripper == 0.0  # right opens
    mapper.on_buttons([], t_s=0.02)  # periodic republish: no button news
    mapper.on_buttons([1], t_s=0.03)  # left pressed
    assert mapper.read(0.03).gripper == 1.0


def test_a_silent_device_reads_as_disconnected_after_its_timeout_and_forgets_its_toggle():
    mapper = JoyMapper(load_mapping("ps5"))
    assert not mapper.read(0.0).connected  # never heard
    buttons = [0] * 21
    buttons[9] = 1  # L1: toggle on
    mapper.on_joy([0.0] * 6, buttons, t_s=1.0)
    assert mapper.read(1.2).engaged
    assert mapper.read(1.5).connected  # exactly timeout_s old: still there
    gone = mapper.read(1.51)
    assert (gone.connected, gone.engaged) == (False, False)
    mapper.on_joy([0.0] * 6, [0] * 21, t_s=3.0)
    back = mapper.read(3.0)
    assert back.connected and not back.engaged  # the toggle did not survive the disconnect


def test_a_message_too_short_for_the_mapping_is_refused_with_the_index_it_needs():
    mapper = JoyMapper(load_mapping("xbox"))
    with pytest.raises(ValueError, match="reads button 14 but the device sent 11 buttons"):
        mapper.on_joy([0.0] * 8, [0] * 11, t_s=0.0)  # a joy_node (raw) layout, not game_controller_node


def test_bad_mapping_files_name_the_field_and_the_valid_choices(tmp_path):
    bad = tmp_path / "pad.yaml"
    bad.write_text("source: joy\ntwist:\n  vq: {axis: 1}\n")
    with pytest.raises(MappingError, match=r"twist has unknown fields \['vq'\]; valid fields are \['vx'"):
        load_mapping(bad)
    bad.write_text("source: joy\ntwist:\n  vx: {axis: 1, buttons: [1, 2]}\n")
    with pytest.raises(MappingError, match="exactly one of 'axis"):
        load_mapping(bad)
    bad.write_text("source: joy\nengage: {on_motion: false}\n")
    with pytest.raises(MappingError, match="can never engage"):
        load_mapping(bad)
    with pytest.raises(MappingError, match=r"choose one of \['keyboard', 'ps4'"):
        load_mapping("xbox360")


def test_terminal_bytes_decode_to_key_names_including_arrows_and_page_keys():
    assert decode_keys(b"w \x1b[A\x1b[6~y\x1b") == ["w", "space", "up", "pagedown", "y", "esc"]


def test_a_motion_key_drives_while_it_repeats_and_stops_after_key_hold_or_on_space():
    kb = KeyboardState(load_mapping("keyboard"))  # key_hold_s 0.6
    kb.press("w", 0.0)
    cmd = kb.read(0.1)
    np.testing.assert_array_equal(cmd.twist, [1, 0, 0, 0, 0, 0])
    assert cmd.engaged and cmd.events == ("take_over",)
    kb.press("w", 0.5)  # a repeat keeps it going
    assert kb.read(1.0).twist[0] == 1.0
    released = kb.read(1.2)
    assert released.twist[0] == 0.0 and not released.engaged and released.events == ("release",)
    kb.press("r", 2.0)
    kb.press("s", 2.0)  # the opposite of w: now -x, and z as well
    np.testing.assert_array_equal(kb.read(2.1).twist, [-1, 0, 1, 0, 0, 0])
    kb.press("space", 2.2)
    np.testing.assert_array_equal(kb.read(2.2).twist, np.zeros(6))


def test_keyboard_takeover_toggles_gripper_keys_latch_and_event_keys_fire_once():
    kb = KeyboardState(load_mapping("keyboard"))
    for key in ("t", "c", "y"):
        kb.press(key, 0.0)
    cmd = kb.read(0.0)
    assert cmd.engaged and cmd.gripper == 1.0 and set(cmd.events) == {"success", "take_over"}
    assert kb.read(0.1).events == ()
    kb.press("g", 0.2)
    kb.press("t", 0.2)
    cmd = kb.read(0.2)
    assert cmd.gripper == 0.0 and not cmd.engaged and cmd.events == ("release",)


def test_the_link_fires_each_counted_event_once_and_reads_a_silent_sender_as_disconnected():
    sent, link = EventCounts(), TeleopLink(timeout_s=0.3)
    assert link.read(0.0) is None
    twist = np.array([0.2, 0, 0, 0, 0, 0])
    sent.add(["success"])  # before the receiver listened: the baseline, not replayed
    link.receive(twist, None, True, True, sent.snapshot(), t_s=1.0)
    assert link.read(1.0).events == ()
    sent.add(["rerecord"])
    for t in (1.1, 1.2):  # the same count twice (heartbeats): one event
        link.receive(twist, 0.5, True, True, sent.snapshot(), t_s=t)
    cmd = link.read(1.25)
    assert cmd.events == ("rerecord",) and cmd.engaged and cmd.gripper == 0.5
    assert link.read(1.3).events == ()
    silent = link.read(1.55)
    assert not silent.connected and not silent.engaged and not np.any(silent.twist)
