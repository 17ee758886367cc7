"""The actor's PM QoS request (robot_rl.acting.cpu_latency) on the real /dev/cpu_dma_latency: held while open,
dropped on close, a clear line where it cannot be written, nothing asked when negative."""

from __future__ import annotations

import os
import struct

import pytest

from robot_rl.acting.cpu_latency import DEVICE, CpuLatencyHold


def _current_us() -> int:
    """The kernel's effective request: the smallest of every holder's (2000 s when nobody asks)."""
    with open(DEVICE, "rb") as f:
        return struct.unpack("i", f.read(4))[0]


@pytest.mark.skipif(not os.access(DEVICE, os.R_OK | os.W_OK), reason=f"{DEVICE} needs root or a udev rule")
def test_the_request_stands_while_held_and_is_dropped_on_close():
    before = _current_us()  # 2000 s when nobody asks; a node still running elsewhere may hold less
    with CpuLatencyHold(7) as hold:
        assert hold.held and "holding 7 us" in hold.line
        assert _current_us() == min(before, 7)  # the kernel honours the smallest request
    assert not hold.held and _current_us() == before


def test_an_unwritable_device_leaves_the_idle_states_and_says_how_to_grant_it(tmp_path):
    missing = tmp_path / "no_such_device"
    hold = CpuLatencyHold(0, device=str(missing))
    assert not hold.held and "could not hold 0 us" in hold.line and "udev rule" in hold.line
    hold.close()  # nothing to drop: no error
    off = CpuLatencyHold(-1)
    assert not off.held and "not requested" in off.line
