"""The intervention arbiter: engage, release, toggles, episode verdicts, frames, device disconnects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_rl.interfaces import TeleopCommand
from robot_rl.teleop import Arbiter, ArbiterConfig, JoyMapper, load_mapping
from robot_rl.teleop.arbiter import action_to_base

POLICY = np.array([0.3, -0.2, 0.1, -1.0], dtype=np.float32)  # [dx, dy, dz, gripper]: open
TOOL_DOWN = np.array([0.0, math.sqrt(0.5), math.sqrt(0.5), 0.0])  # the sim's home tool orientation


def _cmd(twist=(0, 0, 0, 0, 0, 0), gripper=None, engaged=True, events=(), connected=True) -> TeleopCommand:
    return TeleopCommand(np.array(twist, dtype=np.float64), gripper, engaged, tuple(events), connected=connected)


def _make_arbiter(**kw) -> Arbiter:
    cfg = ArbiterConfig(**kw)
    return Arbiter(cfg, 7 if cfg.use_rotation else 4)


def _pad_joy(stick_up: float = 0.0, rb: bool = False, lb: bool = False, a: bool = False, start: bool = False):
    """A game_controller_node Joy message (6 axes, 21 buttons) as (axes, buttons)."""
    axes, buttons = [0.0] * 6, [0] * 21
    axes[1] = stick_up
    buttons[10], buttons[9], buttons[0], buttons[6] = int(rb), int(lb), int(a), int(start)
    return axes, buttons


def test_the_policy_acts_while_nobody_is_engaged_or_no_teleop_exists():
    arb = _make_arbiter()
    for cmd in (None, _cmd(engaged=False)):
        out = arb.step(POLICY, cmd)
        np.testing.assert_array_equal(out.action, POLICY)
        assert not out.is_intervention and out.human_action is None and out.verdict is None and not out.held


def test_a_stick_pushed_past_the_deadband_takes_over_and_letting_go_gives_back():
    mapper, arb = JoyMapper(load_mapping("xbox")), _make_arbiter()
    mapper.on_joy(*_pad_joy(stick_up=0.1), t_s=0.0)  # inside the 0.15 deadband: drift, not a person
    out = arb.step(POLICY, mapper.read(0.01))
    assert not out.is_intervention
    mapper.on_joy(*_pad_joy(stick_up=0.575), t_s=0.05)  # (0.575 - 0.15) / 0.85 = 0.5
    cmd = mapper.read(0.06)
    assert cmd.engaged and cmd.events == ("take_over",)
    out = arb.step(POLICY, cmd)
    assert out.is_intervention
    # the person's x motion, and the policy's last gripper kept (the person gave no gripper command)
    np.testing.assert_allclose(out.action, [0.5, 0.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_array_equal(out.human_action, out.action)
    mapper.on_joy(*_pad_joy(stick_up=0.0), t_s=0.1)
    cmd = mapper.read(0.11)
    assert not cmd.engaged and cmd.events == ("release",)
    np.testing.assert_array_equal(arb.step(POLICY, cmd).action, POLICY)


def test_a_held_dead_man_button_engages_with_zero_motion_so_the_arm_stays_put():
    mapper, arb = JoyMapper(load_mapping("xbox")), _make_arbiter()
    mapper.on_joy(*_pad_joy(rb=True), t_s=0.0)
    out = arb.step(POLICY, mapper.read(0.0))
    assert out.is_intervention
    np.testing.assert_allclose(out.action, [0.0, 0.0, 0.0, -1.0])


def test_the_toggle_button_engages_on_one_press_and_releases_on_the_next():
    mapper = JoyMapper(load_mapping("xbox"))
    engaged = []
    for t, lb in enumerate([True, True, False, False, True, False]):  # press, hold, release, idle, press, release
        mapper.on_joy(*_pad_joy(lb=lb), t_s=t * 0.05)
        engaged.append(mapper.read(t * 0.05).engaged)
    assert engaged == [True, True, True, True, False, False]


def test_a_gripper_button_sets_the_gripper_of_the_human_action():
    mapper, arb = JoyMapper(load_mapping("xbox")), _make_arbiter()
    mapper.on_joy(*_pad_joy(stick_up=1.0, a=True), t_s=0.0)
    out = arb.step(POLICY, mapper.read(0.0))
    np.testing.assert_allclose(out.action, [1.0, 0.0, 0.0, 1.0])  # A closes: closing 1 -> action +1


@pytest.mark.parametrize("event", ["success", "failure", "rerecord"])
def test_episode_events_end_the_episode_with_their_verdict_and_the_arm_holds_until_reset(event):
    arb = _make_arbiter()
    arb.step(POLICY, _cmd(engaged=False))
    out = arb.step(POLICY, _cmd(engaged=False, events=[event]))
    assert out.verdict == event and out.held and not out.is_intervention
    np.testing.assert_allclose(out.action, [0.0, 0.0, 0.0, -1.0])
    later = arb.step(POLICY, _cmd(engaged=False))
    assert later.held and later.verdict is None
    arb.reset()
    np.testing.assert_array_equal(arb.step(POLICY, _cmd(engaged=False)).action, POLICY)


def test_rerecord_wins_over_success_when_both_fire_in_one_step():
    out = _make_arbiter().step(POLICY, _cmd(events=["success", "rerecord"]))
    assert out.verdict == "rerecord"


def test_a_start_button_press_on_the_pad_is_a_success_verdict():
    mapper, arb = JoyMapper(load_mapping("xbox")), _make_arbiter()
    mapper.on_joy(*_pad_joy(start=True), t_s=0.0)
    mapper.on_joy(*_pad_joy(start=False), t_s=0.01)  # a press shorter than a control period still counts
    assert arb.step(POLICY, mapper.read(0.02)).verdict == "success"


def test_a_pure_base_frame_translation_gives_no_rotation_when_the_policy_acts_in_the_tool_frame():
    arb = _make_arbiter(use_rotation=True, policy_frame="ee")
    policy = np.zeros(7, dtype=np.float32)
    out = arb.step(policy, _cmd(twist=(0.5, 0.0, 0.0, 0, 0, 0), gripper=0.0), ee_quat_wxyz=TOOL_DOWN)
    # tool down: the tool's x axis is the base's y axis, its y the base's x, its z points down
    np.testing.assert_allclose(out.action[:3], [0.0, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(out.action[3:6], 0.0, atol=1e-9)
    back = action_to_base(out.action, TOOL_DOWN, use_rotation=True)
    np.testing.assert_allclose(back, [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0], atol=1e-6)


def test_a_command_that_overflows_in_the_tool_frame_is_shrunk_keeping_its_direction():
    quat = np.array([math.cos(math.pi / 8), 0.0, 0.0, math.sin(math.pi / 8)])  # tool yawed 45 degrees
    arb = _make_arbiter(policy_frame="ee")
    out = arb.step(np.zeros(4, np.float32), _cmd(twist=(1.0, 1.0, 0.5, 0, 0, 0)), ee_quat_wxyz=quat)
    # in the tool frame (1, 1, 0.5) is (1.414, 0, 0.5): too long for an action, so all of it is scaled by 1/1.414
    np.testing.assert_allclose(out.action[:3], [1.0, 0.0, 0.5 / math.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(
        action_to_base(out.action, quat, False)[:3], np.array([1.0, 1.0, 0.5]) / math.sqrt(2), atol=1e-6
    )


def test_base_frame_policies_get_the_twist_unrotated_and_scaled():
    arb = _make_arbiter(translation_scale=0.5)
    out = arb.step(POLICY, _cmd(twist=(1.0, -1.0, 0.4, 0.3, 0, 0)), ee_quat_wxyz=TOOL_DOWN)
    np.testing.assert_allclose(out.action, [0.5, -0.5, 0.2, -1.0], atol=1e-6)


def test_a_device_lost_mid_intervention_holds_the_arm_and_the_policy_does_not_resume_until_reengaged():
    mapper, arb = JoyMapper(load_mapping("xbox")), _make_arbiter()
    mapper.on_joy(*_pad_joy(stick_up=1.0, a=True), t_s=0.0)
    assert arb.step(POLICY, mapper.read(0.1)).is_intervention
    # the pad goes silent: after timeout_s (0.5 s) it reads as disconnected
    assert mapper.read(0.45).connected
    lost = mapper.read(0.6)
    assert not lost.connected and not lost.engaged and lost.events == ()
    out = arb.step(POLICY, lost)
    assert out.held and not out.is_intervention and out.human_action is None
    np.testing.assert_allclose(out.action, [0.0, 0.0, 0.0, 1.0])  # no motion, the person's gripper (closed) kept
    # it comes back, nobody touches it: still held, the policy does not silently take over
    mapper.on_joy(*_pad_joy(), t_s=2.0)
    back = mapper.read(2.0)
    assert back.connected and not back.engaged
    assert arb.step(POLICY, back).held
    # the person engages again and lets go: now the policy resumes
    mapper.on_joy(*_pad_joy(stick_up=-1.0), t_s=2.1)
    assert arb.step(POLICY, mapper.read(2.1)).action[0] == pytest.approx(-1.0)
    mapper.on_joy(*_pad_joy(), t_s=2.2)
    np.testing.assert_array_equal(arb.step(POLICY, mapper.read(2.2)).action, POLICY)


def test_a_lost_device_while_the_policy_acts_holds_only_when_configured():
    lost = _cmd(engaged=False, connected=False)
    plain = _make_arbiter()
    plain.step(POLICY, _cmd(engaged=False))
    np.testing.assert_array_equal(plain.step(POLICY, lost).action, POLICY)
    careful = _make_arbiter(hold_on_idle_disconnect=True)
    careful.step(POLICY, _cmd(engaged=False))
    assert careful.step(POLICY, lost).held


def test_the_episode_end_clears_a_hold_left_by_a_lost_device():
    arb = _make_arbiter()
    arb.step(POLICY, _cmd(twist=(1, 0, 0, 0, 0, 0)))
    assert arb.step(POLICY, _cmd(engaged=False, connected=False)).held
    arb.reset()
    np.testing.assert_array_equal(arb.step(POLICY, _cmd(engaged=False, connected=False)).action, POLICY)


def test_bad_configs_and_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match=r"choose one of \('base', 'ee'\)"):
        ArbiterConfig(policy_frame="tool")
    with pytest.raises(ValueError, match="needs 7"):
        Arbiter(ArbiterConfig(use_rotation=True), 4)
    with pytest.raises(ValueError, match=r"expected \(4,\)"):
        _make_arbiter().step(np.zeros(3), None)
    with pytest.raises(ValueError, match="needs the tool orientation"):
        _make_arbiter(policy_frame="ee").step(POLICY, _cmd(twist=(1, 0, 0, 0, 0, 0)))
