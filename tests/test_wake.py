"""Wake windows (robot_rl.acting.wake): a control thread that is ordinary between periods takes SCHED_FIFO from
`lead` before the next period is due, predicted from the periods seen; a window without a period is followed by the
next on the same grid. Over a real rclpy executor with a wall timer: the tick finds its thread already on FIFO,
and the thread is still ordinary most of the time."""

from __future__ import annotations

import math
import sys
import threading
import time

import pytest
from test_control_priority import NO_FIFO, _fifo_permitted

from robot_rl.acting.config import ActorConfig
from robot_rl.acting.realtime import TickPriority, thread_policy
from robot_rl.acting.wake import WakeThread, WakeWindow
from robot_rl_drivers.arm_config import ArmNodeConfig


def _window(starts, period=0.1, lead=0.01) -> WakeWindow:
    w = WakeWindow(period, lead)
    for t in starts:
        w.started(t)
    return w


def test_no_window_before_a_period_is_seen_or_with_lead_0():
    assert _window([]).wait_s(5.0) == math.inf and _window([]).left_s(5.0) == 0.0
    assert _window([0.0, 0.1, 0.2], lead=0.0).wait_s(0.29) == math.inf


def test_the_window_opens_lead_before_the_grid_and_one_late_start_does_not_move_it():
    w = _window([0.0, 0.1, 0.2, 0.3, 0.4])
    assert w.due_s(0.41) == pytest.approx(0.5) and w.wait_s(0.41) == pytest.approx(0.08)
    assert w.wait_s(0.495) == 0.0 and w.left_s(0.495) == pytest.approx(0.015)
    w.started(0.509)  # 9 ms late: the next period is still due at 0.6, not 0.609
    assert w.due_s(0.52) == pytest.approx(0.6) and w.wait_s(0.52) == pytest.approx(0.07)


def test_after_the_grid_moves_later_the_window_covers_both_phases_until_the_old_one_leaves_the_history():
    w = _window([0.0, 0.1, 0.2, 0.3, 0.4, 0.515, 0.615])  # from 0.5 on the periods start 15 ms later
    assert w.due_s(0.62) == pytest.approx(0.7) and w.wait_s(0.62) == pytest.approx(0.07)  # opens on the old phase
    assert w.left_s(0.71) == pytest.approx(0.015)  # still open at 0.71, past old + lead: the tick due at 0.715
    for t in (0.715, 0.815, 0.915, 1.015, 1.115, 1.215, 1.315):  # the old phase leaves the 9 starts kept
        w.started(t)
    assert w.due_s(1.32) == pytest.approx(1.415) and w.left_s(1.41) == pytest.approx(0.015)
    wild = _window([0.0, 0.1, 0.2, 0.345, 0.4])  # phases 45 ms apart: the window spans at most half a period
    assert wild.wait_s(0.41) == pytest.approx(0.08) and wild.left_s(0.49) == pytest.approx(0.05)  # 0.49 to 0.54


def test_a_window_that_passes_without_a_period_is_followed_by_the_next_on_the_grid():
    w = _window([0.0, 0.1, 0.2])
    assert w.due_s(0.305) == pytest.approx(0.3)  # still open (lead after the due time)
    assert w.due_s(0.311) == pytest.approx(0.4) and w.wait_s(0.311) == pytest.approx(0.079)
    assert w.due_s(1.234) == pytest.approx(1.3)  # a paused clock: windows keep opening on the same grid


def test_the_period_follows_the_periods_seen_not_the_nominal_one():
    fast = _window([i * 0.05 for i in range(6)])  # a sim-time tick with the sim at 2x real time
    assert fast.period_s() == pytest.approx(0.05) and fast.due_s(0.26) == pytest.approx(0.3)
    stalled = _window([0.0, 0.1, 0.2, 5.0, 5.1])  # a stall of seconds is no period
    assert stalled.period_s() == pytest.approx(0.1)


def test_a_lead_is_at_most_a_quarter_period_and_a_negative_one_is_refused_with_the_parameter_name():
    assert WakeWindow(0.02, 0.01).lead_s == pytest.approx(0.005)  # 5 ms wake-ups in a 20 ms period
    assert WakeWindow(0.1, 0.01).lead_s == pytest.approx(0.01)
    with pytest.raises(ValueError, match="wake_lead_ms"):
        ActorConfig(store="/tmp/x", wake_lead_ms=-1.0).validate()
    with pytest.raises(ValueError, match="wake_lead_ms"):
        ArmNodeConfig(wake_lead_ms=float("nan")).validate()
    ActorConfig(store="/tmp/x", wake_lead_ms=0.0).validate()


def _spin_a_10hz_timer(lead_s: float, seconds: float) -> tuple[list[str], list[str]]:
    """A real rclpy node with a 10 Hz wall timer, spun as the actor spins (spin_once, one timeout) on a thread of its
    own with a WakeThread: the thread's policy as each tick finds it, and as another thread samples it every 10 ms."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("wake_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    priority, window = TickPriority(30), WakeWindow(0.1, lead_s)
    at_tick: list[str] = []
    tid: list[int] = []
    stop = threading.Event()

    def tick() -> None:
        at_tick.append(thread_policy(threading.get_native_id())[0])  # before the tick's own `with priority`
        with priority:
            window.started(time.monotonic())

    def serve() -> None:
        tid.append(threading.get_native_id())
        priority.permitted()
        waker = WakeThread(window, priority)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        waker.close()

    node.create_timer(0.1, tick)
    thread = threading.Thread(target=serve)
    thread.start()
    sampled = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if tid:
                sampled.append(thread_policy(tid[0])[0])
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return at_tick, sampled


@pytest.mark.ros
def test_a_tick_finds_its_thread_already_on_fifo_and_between_ticks_it_is_ordinary():
    if not _fifo_permitted():
        pytest.skip(NO_FIFO)
    at_tick, sampled = _spin_a_10hz_timer(0.01, 2.0)
    # the first two ticks come before a period is known; after them the window opens ahead of each tick
    assert len(at_tick) >= 15 and at_tick[3:].count("SCHED_FIFO") >= len(at_tick[3:]) - 1, at_tick
    assert sampled.count("SCHED_OTHER") >= 0.75 * len(sampled), sampled  # ~10 ms of each 100 at FIFO
    at_tick, sampled = _spin_a_10hz_timer(0.0, 1.0)  # lead 0: as before, ordinary until the tick starts
    assert set(at_tick) == {"SCHED_OTHER"} and sampled.count("SCHED_OTHER") >= 0.9 * len(sampled), (at_tick, sampled)


def test_a_window_that_closes_without_a_tick_drops_the_thread_again():
    """The clock stops (a paused sim): the wake thread raises the control thread for each window and drops it."""
    if not _fifo_permitted():
        pytest.skip(NO_FIFO)
    priority, window, seen = TickPriority(30), WakeWindow(0.1, 0.02), []
    ready, stop = threading.Event(), threading.Event()

    def control() -> None:  # three ticks, then none: the thread only sleeps
        priority.permitted()
        for _ in range(3):
            with priority:
                window.started(time.monotonic())
            time.sleep(0.1)
        seen.append(threading.get_native_id())
        ready.set()
        stop.wait(5.0)

    thread = threading.Thread(target=control)
    thread.start()
    assert ready.wait(5.0)
    waker = WakeThread(window, priority)
    try:
        samples = []
        for _ in range(100):  # 1 s: windows of 40 ms every 100 ms, no tick in any
            samples.append(thread_policy(seen[0])[0])
            time.sleep(0.01)
        assert 15 <= samples.count("SCHED_FIFO") <= 60, samples
    finally:
        waker.close()  # ends inside a window or between: the thread is ordinary again either way
        after = thread_policy(seen[0])[0]
        stop.set()
        thread.join()
    assert after == "SCHED_OTHER"


def test_unpaced_back_to_back_periods_get_no_window():
    w = _window([i * 0.001 for i in range(9)], period=0.02, lead=0.005)
    assert not w.active() and w.wait_s(0.0105) == math.inf


def test_the_wake_thread_reads_the_window_while_the_control_thread_records_starts():
    """Before one snapshot per query, iterating the starts while a tick appended one raised 'deque mutated during
    iteration' in the wake thread, which then ended: the windows stopped without a word."""
    window, errors, stop = _window([0.0, 0.1]), [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                window.wait_s(5.0), window.left_s(5.0)
            except Exception as e:  # noqa: BLE001 - the failure this test is about
                errors.append(repr(e))
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(100_000):
            window.started(0.2 + 0.1 * i)
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert errors == []
