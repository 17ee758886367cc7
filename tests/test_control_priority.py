"""The actor's control thread on SCHED_FIFO (robot_rl.acting.realtime): where the process may, that thread while it runs
a tick (ordinary between ticks) and its DDS receive threads one below, sleeping between ticks; the sim robot's
physics periods the same way one level higher; with control_priority:=0 as started; without the permission a
fallback that says how to grant it. Two real actor nodes over DDS (no sim: they tick on the wall clock and hold) and
two sim robots, read from the kernel; and the split of a tick's wall time into CPU, run-queue wait and blocked time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rosprocs import Probe
from rosprocs import start_process as _start
from rosprocs import stop_process as _stop
from std_msgs.msg import String

from robot_rl.acting.realtime import DDS_THREADS, TickPriority, raise_thread_priority, thread_policy
from robot_rl.acting.timing import TickTiming
from robot_rl.acting.wake import THREAD_NAME
from robot_rl.ros import protocol

BIN = Path(sys.executable).parent
NS = f"/prio_test_{os.getpid()}"
NO_FIFO = "this process may not use SCHED_FIFO (needs root, CAP_SYS_NICE or an rtprio limit: docs/hardware.md)"


def _fifo_permitted() -> bool:
    """Whether this process may put a thread on SCHED_FIFO (root, CAP_SYS_NICE or an rtprio limit)."""
    got: list[str] = []
    thread = threading.Thread(target=lambda: got.append(raise_thread_priority(1).policy))
    thread.start()
    thread.join()
    return got == ["SCHED_FIFO"]


def _cpu_s(pid: int, tid: int) -> float:
    """CPU seconds the thread has run (schedstat's first field)."""
    return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) * 1e-9


def _start_actor(tmp: Path, name: str, priority: int | None):
    args = ["-p", f"control_priority:={priority}"] if priority is not None else []
    cmd = [str(BIN / "robot-rl-actor-node"), "--ros-args", "-r", f"__ns:={NS}/{name}", "-r", "__node:=actor"]
    return _start([*cmd, "-p", f"store:={tmp / name}", "-p", "warmup:=hold", *args], tmp / f"{name}.log")


@pytest.mark.ros
def test_the_actor_control_thread_alone_runs_sched_fifo_and_sleeps_between_ticks_and_priority_0_leaves_it(tmp_path):
    fifo = _fifo_permitted()
    procs = {"rt": _start_actor(tmp_path, "rt", None), "off": _start_actor(tmp_path, "off", 0)}  # default: 50
    probe, status = Probe("prio_probe"), {}
    for name in procs:
        probe.node.create_subscription(
            String,
            f"{NS}/{name}/actor_status",  # relative to the node's namespace
            lambda m, n=name: status.__setitem__(n, json.loads(m.data)),
            protocol.LATCHED_QOS,
        )
    try:
        up = probe.spin_until(
            lambda: (
                all((status.get(n) or {}).get("control_thread") for n in procs)
                or any(p.poll() is not None for p in procs.values())
            ),
            60.0,
        )
        logs = {n: (tmp_path / f"{n}.log").read_text() for n in procs}
        assert up and all(p.poll() is None for p in procs.values()), logs
        rt, off = status["rt"]["control_thread"], status["off"]["control_thread"]
        # the thread that spins the executor (and runs the tick) is the process's main thread
        assert (rt["tid"], off["tid"]) == (procs["rt"].pid, procs["off"].pid)
        if fifo:  # FIFO 50 while it runs a tick; between ticks (callbacks, waiting) an ordinary thread again
            assert (rt["policy"], rt["rt_priority"], rt["tick_only"]) == ("SCHED_FIFO", 50, True)
            assert "SCHED_FIFO 50" in logs["rt"] and "only while it runs a tick" in logs["rt"]  # the one line
            samples = []
            for _ in range(100):  # 1 s of 10 Hz ticks of ~1 ms, each with its wake window before: mostly between
                samples.append(thread_policy(rt["tid"])[0])
                time.sleep(0.01)
            # always SCHED_FIFO before the fix. The window is 10 ms either side of the predicted start, widened to at
            # most half a period while recent starts disagree (a loaded machine's jitter: CI saw 32 % FIFO), so an
            # ordinary thread between ticks is at least ~40 % of the samples
            assert samples.count("SCHED_OTHER") >= 35, samples
        else:
            assert thread_policy(rt["tid"])[0] == "SCHED_OTHER" and "not permitted" in logs["rt"]
        # besides it only the DDS library's receive threads, one below it, and the wake thread that raises it ahead of
        # each tick, at its level (robot_rl.acting.wake); the policy loader and every other Python thread stay ordinary
        tasks = Path(f"/proc/{procs['rt'].pid}/task")
        names = {int(t.name): (t / "comm").read_text().strip() for t in tasks.iterdir() if int(t.name) != rt["tid"]}
        wake = {thread_policy(t)[:2] for t, name in names.items() if name == THREAD_NAME.decode()}
        assert wake == ({("SCHED_FIFO", 50)} if fifo else set()), names
        names = {t: name for t, name in names.items() if name != THREAD_NAME.decode()}
        dds = {thread_policy(t)[:2] for t, name in names.items() if name.startswith(DDS_THREADS)}
        others = {thread_policy(t)[0] for t, name in names.items() if not name.startswith(DDS_THREADS)}
        assert len(names) >= 3 and others == {"SCHED_OTHER"}, names
        assert dds == ({("SCHED_FIFO", 49)} if fifo else {("SCHED_OTHER", 0)}), (names, dds)
        assert thread_policy(off["tid"]) == ("SCHED_OTHER", 0, 0) and off["policy"] == "SCHED_OTHER"
        # no deep CPU idle states while an actor runs (its default cpu_latency_us 0, where the device may be written)
        held = os.access("/dev/cpu_dma_latency", os.W_OK)
        assert status["rt"]["cpu_latency_us"] == (0 if held else None)
        assert ("cpu latency: holding 0 us" if held else "cpu latency: could not hold 0 us") in logs["rt"]
        assert "control_priority 0" in logs["off"]
        # a FIFO thread that spun would own a core: over 3 s of 10 Hz holds it must run well under 20 % of one
        cpu0, ticks0 = _cpu_s(procs["rt"].pid, rt["tid"]), status["rt"]["ticks"]
        probe.spin_for(3.0)
        cpu_share = (_cpu_s(procs["rt"].pid, rt["tid"]) - cpu0) / 3.0
        assert status["rt"]["ticks"] - ticks0 >= 20 and cpu_share < 0.2, (cpu_share, status["rt"]["ticks"] - ticks0)
    finally:
        probe.close()
        codes = {n: _stop(p) for n, p in procs.items()}
    assert codes == {"rt": 0, "off": 0}


def _start_sim(tmp: Path, name: str, priority: int | None):
    args = ["-p", f"control_priority:={priority}"] if priority is not None else []
    cmd = [str(BIN / "robot-rl-sim-node"), "--ros-args", "-r", f"__ns:={NS}/{name}", "-p", "camera_rate_hz:=0.0"]
    return _start([*cmd, "-p", "publish_clock:=false", *args], tmp / f"{name}.log")


@pytest.mark.ros
def test_the_sim_robot_runs_each_physics_period_on_sched_fifo_above_the_actor_and_priority_0_leaves_it(tmp_path):
    fifo = _fifo_permitted()
    procs = {"rt": _start_sim(tmp_path, "sim_rt", None), "off": _start_sim(tmp_path, "sim_off", 0)}  # default: 60
    logs: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not all("arm period thread" in logs.get(n, "") for n in procs):
            assert all(p.poll() is None for p in procs.values()), logs
            logs = {n: (tmp_path / f"sim_{n}.log").read_text() for n in procs}
            time.sleep(0.2)
        assert all("arm period thread" in logs[n] for n in procs), logs
        assert f"arm period thread (tid {procs['off'].pid})" in logs["off"] and "control_priority 0" in logs["off"]
        assert f"arm period thread (tid {procs['rt'].pid})" in logs["rt"]  # the main thread steps the physics
        if not fifo:
            assert "not permitted" in logs["rt"]
            return
        assert "SCHED_FIFO 60" in logs["rt"] and "only while it runs a tick" in logs["rt"], logs["rt"]
        samples = []
        for _ in range(100):  # 1 s of 50 Hz periods of ~1 ms, each after a 5 ms wake window: mostly between them
            samples.append(thread_policy(procs["rt"].pid)[:2])
            time.sleep(0.01)
        # policy and priority are two reads: one sample may straddle a switch (("SCHED_OTHER", 60) was seen)
        assert {p for p, _ in samples} <= {"SCHED_OTHER", "SCHED_FIFO"} and {r for _, r in samples} <= {0, 60}, samples
        assert [p for p, _ in samples].count("SCHED_OTHER") >= 55, samples  # ordinary between periods
        assert thread_policy(procs["off"].pid)[:2] == ("SCHED_OTHER", 0)
    finally:
        codes = {n: _stop(p) for n, p in procs.items()}
    assert codes == {"rt": 0, "off": 0}


@pytest.mark.ros
@pytest.mark.parametrize("camera_thread", [True, False], ids=["camera_thread", "inline"])
def test_a_sim_robot_period_runs_on_sched_fifo_60_and_the_render_after_it_does_not(camera_thread):
    """In process: what the scheduling is while the physics ticks, while the cameras render (on their own thread, or
    inline on the period's thread after the period), and after."""
    import rclpy

    from robot_rl_sim.node import SimRobotNode

    if not _fifo_permitted():
        pytest.skip(NO_FIFO)
    rclpy.init(
        args=["sim", "--ros-args", "-r", f"__ns:={NS}/inproc", "-p", "publish_clock:=false"]
        + ["-p", f"camera_thread:={str(camera_thread).lower()}"]
    )
    node, seen = SimRobotNode(), {}
    try:
        node.trigger_configure()
        node.trigger_activate()
        tick = node.adapter.tick
        node.adapter.tick = lambda dt: (seen.setdefault("tick", thread_policy(threading.get_native_id())), tick(dt))
        cameras = node.extras.camera_thread
        rig = node.env.rig if cameras is None else cameras.rig  # the thread's rig is drawn on the camera thread
        draw = rig.render if cameras is None else rig.draw
        hooked = lambda names=None: (seen.setdefault("render", thread_policy(threading.get_native_id())), draw())[1]  # noqa: E731
        setattr(rig, "render" if cameras is None else "draw", hooked)

        node.take_period_thread()  # this thread: ordinary again after each period
        seen["between"] = thread_policy(threading.get_native_id())
        for _ in range(6):  # the cameras render on the period that crosses 100 ms of sim time
            node.step()
        seen["after"] = thread_policy(threading.get_native_id())
        for _ in range(500):
            if "render" in seen:
                break
            time.sleep(0.01)
        go_home = node.robot.go_home  # the reset service's move: the sim settles its physics in it
        node.robot.go_home = lambda: (seen.setdefault("home", thread_policy(threading.get_native_id())), go_home())[1]
        node._own_home_move()
        seen["after home"] = thread_policy(threading.get_native_id())
        ordinary, fifo = ("SCHED_OTHER", 0, 0), ("SCHED_FIFO", 60, 0)
        assert seen == {
            "between": ordinary,
            "tick": fifo,
            "render": ordinary,
            "after": ordinary,
            "home": fifo,
            "after home": ordinary,
        }
    finally:
        node.close()
        rclpy.try_shutdown()


def test_a_thread_the_fifo_control_thread_starts_is_ordinary_again():
    if not _fifo_permitted():
        pytest.skip(NO_FIFO)
    seen: dict[str, tuple] = {}

    def control() -> None:
        seen["control"] = thread_policy(raise_thread_priority(20).tid)
        child = threading.Thread(target=lambda: seen.__setitem__("child", thread_policy(threading.get_native_id())))
        child.start()
        child.join()

    thread = threading.Thread(target=control)
    thread.start()
    thread.join()
    assert seen == {"control": ("SCHED_FIFO", 20, 0), "child": ("SCHED_OTHER", 0, 0)}


def test_tick_priority_holds_sched_fifo_only_inside_the_tick_and_keeps_the_nice_value():
    if not _fifo_permitted():
        pytest.skip(NO_FIFO)
    seen: dict[str, tuple] = {}

    def control() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, 3)  # a nice value of its own: kept between ticks
        tick = TickPriority(30)
        seen["got"] = (tick.permitted().policy, tick.on)
        tid = threading.get_native_id()
        seen["before"] = thread_policy(tid)
        with tick:
            seen["inside"] = thread_policy(tid)
        seen["after"] = thread_policy(tid)

    thread = threading.Thread(target=control)
    thread.start()
    thread.join()
    assert seen == {
        "got": ("SCHED_FIFO", True),
        "before": ("SCHED_OTHER", 0, 3),
        "inside": ("SCHED_FIFO", 30, 3),
        "after": ("SCHED_OTHER", 0, 3),
    }
    off = TickPriority(0)
    assert off.permitted().policy == thread_policy(threading.get_native_id())[0] and not off.on


def test_without_cap_sys_nice_the_thread_stays_ordinary_and_the_line_says_how_to_grant_it():
    code = (
        "from robot_rl.acting.realtime import raise_thread_priority as r; p = r(50); "
        "print(p.policy, p.rt_priority, p.nice); print(p.line)"
    )
    drop = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice"] if os.geteuid() == 0 else []
    out = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    first, line = out.stdout.splitlines()
    if resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 50:  # a user granted rtprio: FIFO without any capability
        assert first == "SCHED_FIFO 50 0"
        return
    assert first in ("SCHED_OTHER 0 0", "SCHED_OTHER 0 -10"), out.stdout  # -10: an RLIMIT_NICE grant
    assert "SCHED_FIFO 50 not permitted" in line and "ulimit -r" in line and "limits.conf" in line


def test_control_priority_outside_0_to_99_is_refused_and_0_changes_nothing():
    with pytest.raises(ValueError, match="1..99"):
        raise_thread_priority(100)
    before = thread_policy(threading.get_native_id())
    assert (raise_thread_priority(0).policy, thread_policy(threading.get_native_id())) == (before[0], before)


def test_a_tick_splits_into_cpu_run_queue_wait_and_blocked_time_as_the_kernel_counts_them():
    timing = TickTiming(0.1)
    t0 = time.monotonic()
    timing.tick_started()
    time.sleep(0.05)  # blocked: neither running nor runnable (as a wait for the GIL is)
    end = time.thread_time() + 0.02
    while time.thread_time() < end:  # 20 ms of CPU (the wall time it takes depends on the machine's load)
        pass
    timing.command_sent(time.monotonic() - t0)
    (act_s,), (cpu_s,), (runq_s,) = timing.act_s, timing.act_cpu_s, timing.act_runq_s
    assert 0.02 <= cpu_s < 0.03 and runq_s >= 0.0, (act_s, cpu_s, runq_s)
    assert act_s - cpu_s - runq_s >= 0.049, (act_s, cpu_s, runq_s)  # the sleep shows as blocked time, not CPU
    timing.reset()  # a new episode: the split starts over, a tick in flight keeps its start
    assert timing.act_cpu_s == [] and timing.act_runq_s == []
