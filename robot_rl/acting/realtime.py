"""Real-time priority for the actor's control thread: SCHED_FIFO when the process may, else a negative nice.

On 2 cores the learner's updates, the sim's rendering, the camera node and the actor share the CPU, and the
kernel's fair scheduler (CFS) preempts the control thread mid-inference: that is the tail of the tick jitter and
the inference time. Real arms' stacks (ros2_control's controller manager, franka_ros2, realtime_tools) put the
control loop's thread -- only that thread -- on SCHED_FIFO: it then runs whenever it is runnable, ahead of every
SCHED_OTHER thread on the machine, and sleeps (never spins) between ticks, so it takes no more CPU than before.

`raise_thread_priority` tries, in order:
  1. SCHED_FIFO at `priority` (1..99) with SCHED_RESET_ON_FORK, so threads this thread starts later (a decoder,
     torch's pool) are ordinary again. Permitted to root, to CAP_SYS_NICE, or up to the user's RLIMIT_RTPRIO
     (`ulimit -r`, limits.conf `rtprio`).
  2. nice FALLBACK_NICE for the thread alone (Linux nice is per thread): permitted by CAP_SYS_NICE or RLIMIT_NICE.
  3. nothing: the thread runs as it was, and the line says how to grant the priority.
RT throttling (`kernel.sched_rt_runtime_us`, 950000 of every 1000000 us by default) keeps a runaway FIFO thread
from freezing the machine. Linux only; elsewhere the result says "unsupported".

The actor holds SCHED_FIFO only while its thread runs a tick (`TickPriority`), not between ticks. That thread also
runs every subscription callback, and a FIFO thread is woken for each message at once instead of taking several per
wake-up: with the sim at 3x real time (~1000 input messages/s) it then used 65 % of a core (34 % as an ordinary
thread), ahead of everything else. An ordinary arm process -- the sim of tests/test_ros_actor.py, pinned with the
actor to one loaded core -- got 21 % of it, its DDS dropped most commands (13-45 of ~1000 reached it), its watchdog
held the arm, and whole episodes passed with the arm still. Raised for the tick alone (two syscalls, ~6 us here), the
tick's inference and command are never preempted by ordinary threads, and the callbacks between ticks batch as before.

`raise_named_threads` does the same for threads found by their kernel name: the actor puts the DDS library's receive
threads one below its control thread, since a sim-time tick starts only once they hand over /clock (`robot-rl bench
ros`, sim on SCHED_FIFO too, 2 cores at load 9-20: control jitter p99 1.3-7.4 ms with them at 49, 7.8-15.3 ms with
them ordinary).

No ROS and no torch here: the node calls it from the thread that runs its tick (robot_rl.nodes.actor.main).
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass
from pathlib import Path

DDS_THREADS = ("dds.", "recv", "tev", "dq.")  # Fast DDS: dds.udp.*, dds.shm.*, dds.ev.*; Cyclone DDS: recv*, tev, dq.*
FALLBACK_NICE = -10  # the thread's nice value when SCHED_FIFO is not permitted
_POLICY_NAMES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_IDLE")


@dataclass(frozen=True)
class ThreadPriority:
    """What a thread got: its kernel thread id, policy name, FIFO priority (0 for SCHED_OTHER) and nice value."""

    tid: int
    policy: str  # SCHED_FIFO, SCHED_OTHER, ... (as the kernel reports it now)
    rt_priority: int  # 1..99 under SCHED_FIFO / SCHED_RR, else 0
    nice: int  # the thread's nice value (matters under SCHED_OTHER only)
    line: str  # one log line: what was asked, what it got, and why
    tick_only: bool = False  # the policy holds only while the thread runs a tick (TickPriority); ordinary between

    def as_dict(self) -> dict:
        return {
            "tid": self.tid,
            "policy": self.policy,
            "rt_priority": self.rt_priority,
            "nice": self.nice,
            "tick_only": self.tick_only,
        }


def thread_policy(tid: int) -> tuple[str, int, int]:
    """(policy name, real-time priority, nice) of the thread `tid` (any process's, Linux), read from the kernel."""
    policy = os.sched_getscheduler(tid) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
    names = {getattr(os, n): n for n in _POLICY_NAMES if hasattr(os, n)}
    return names.get(policy, str(policy)), os.sched_getparam(tid).sched_priority, os.getpriority(os.PRIO_PROCESS, tid)


def raise_thread_priority(priority: int, tid: int | None = None, what: str = "control thread") -> ThreadPriority:
    """Put the thread `tid` (default: the calling one) on SCHED_FIFO at `priority`, else nice FALLBACK_NICE, else
    leave it; priority 0 leaves it as it is. Never raises for a refused permission: the result's line says."""
    if not 0 <= priority <= 99:
        raise ValueError(f"control_priority must be 0 (off) or a SCHED_FIFO priority 1..99, got {priority}")
    tid = threading.get_native_id() if tid is None else tid
    if not hasattr(os, "sched_setscheduler"):  # macOS, Windows
        return ThreadPriority(tid, "unsupported", 0, 0, f"{what}: real-time priority is unsupported on this OS")
    if priority == 0:
        return _result(tid, what, "control_priority 0: left at its scheduling as started")
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
        return _result(
            tid, what, f"SCHED_FIFO {priority}: ahead of every ordinary thread (RT budget {rt_runtime_us()} us/s)"
        )
    except PermissionError:
        why = f"SCHED_FIFO {priority} not permitted ({_rt_grant()})"
    try:
        os.setpriority(os.PRIO_PROCESS, tid, FALLBACK_NICE)
        return _result(tid, what, f"{why}; fell back to nice {FALLBACK_NICE}")
    except PermissionError:
        return _result(tid, what, f"{why}, nor nice {FALLBACK_NICE}: runs at normal priority")


class TickPriority:
    """`with tick_priority:` puts the thread that called `permitted` on SCHED_FIFO at `priority` for the block (one
    tick) and back on SCHED_OTHER (its nice kept) after it; priority 0 does nothing. Call `permitted` once first, from
    that thread: it tries. `hold_ahead` / `release_idle` let another thread (robot_rl.acting.wake.WakeThread) raise it
    before a tick is due and drop it again when none came."""

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.on = False  # set by `permitted`: the process may use SCHED_FIFO at `priority`
        self.held = False  # the thread holds it now
        self.in_tick = False  # inside `with`
        self.tid = 0  # the control thread (`permitted`'s caller)
        self._lock = threading.Lock()

    def permitted(self, what: str = "control thread") -> ThreadPriority:
        """Try SCHED_FIFO on the calling thread (else the nice fallback, which then stays for every callback of
        the thread: CFS weighs it, nothing starves); leave it ordinary between ticks. The result describes the
        tick's scheduling and its line says so."""
        got = raise_thread_priority(self.priority, what=what)
        self.tid = got.tid
        self.on = self.held = got.policy == "SCHED_FIFO"
        if not self.on:
            return got
        self._set(False)
        line = f"{got.line}; held only while it runs a tick, ordinary between ticks (robot_rl.acting.realtime)"
        return ThreadPriority(got.tid, got.policy, got.rt_priority, got.nice, line, tick_only=True)

    def _set(self, fifo: bool) -> None:  # the caller holds the lock (or is the only thread yet)
        if self.on and fifo != self.held:
            if fifo:
                os.sched_setscheduler(self.tid, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(self.priority))
            else:
                os.sched_setscheduler(self.tid, os.SCHED_OTHER, os.sched_param(0))
            self.held = fifo

    def hold_ahead(self) -> None:
        """SCHED_FIFO for the control thread from now, ahead of its next tick (called from another thread)."""
        with self._lock:
            self._set(True)

    def release_idle(self, still_idle) -> None:
        """Drop it again unless a tick runs or `still_idle()` says one came meanwhile."""
        with self._lock:
            if not self.in_tick and still_idle():
                self._set(False)

    def __enter__(self) -> TickPriority:
        with self._lock:
            self.in_tick = True
            self._set(True)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.in_tick = False
            self._set(False)


def raise_named_threads(prefixes: tuple[str, ...], priority: int, what: str) -> str:
    """SCHED_FIFO at `priority` for every thread of this process whose kernel name starts with one of `prefixes`
    (the DDS library's own receive and event threads: a sim-time tick waits for them to hand over /clock);
    one log line. Priority 0, or a refused permission, leaves them as they are."""
    if priority == 0 or not hasattr(os, "sched_setscheduler"):
        return f"{what}: left as started"
    named, done = [], 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if task.joinpath("comm").read_text().strip().startswith(prefixes):
                named.append(task.name)
                os.sched_setscheduler(int(task.name), os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
                done += 1
        except (PermissionError, ProcessLookupError, FileNotFoundError):  # not permitted, or the thread ended
            pass
    return f"{what}: {done} of {len(named)} threads named {'/'.join(prefixes)}* on SCHED_FIFO {priority}"


def _result(tid: int, what: str, how: str) -> ThreadPriority:
    policy, rt, nice = thread_policy(tid)
    return ThreadPriority(tid, policy, rt, nice, f"{what} (tid {tid}): {policy} rt {rt} nice {nice} -- {how}")


def _rt_grant() -> str:
    """Why not, and how to grant it: the user's rtprio limit and the knob that raises it."""
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    return (
        f"RLIMIT_RTPRIO {soft}, no CAP_SYS_NICE; grant it with 'ulimit -r 99' or an 'rtprio' line in "
        "/etc/security/limits.conf, see docs/hardware.md"
    )


def rt_runtime_us() -> int | None:
    """kernel.sched_rt_runtime_us: microseconds per second SCHED_FIFO threads may use (-1: no throttling)."""
    path = Path("/proc/sys/kernel/sched_rt_runtime_us")
    return int(path.read_text()) if path.is_file() else None
