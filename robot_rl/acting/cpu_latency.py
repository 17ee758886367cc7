"""Keep the CPUs out of deep idle states while the control loop runs: a PM QoS request on /dev/cpu_dma_latency.

A 10 Hz tick works ~10 ms and sleeps ~90: by then its CPU, and the one the frame worker runs on, sit in an idle state
whose exit costs time -- on a KVM guest (haltpoll cpuidle) a halted vCPU is a host thread that must be woken and
scheduled again, its caches cold. Measured on the 2-core KVM host (session 27, a trained ResNet-10 pixel policy's
`act` on two 128x128 frames split over the calling thread and a SCHED_FIFO worker, 100 calls; ms wall p50 / p99,
thread CPU p50 / p99):

    back to back                       9.1 / 11.2   9.0 / 9.5
    after 100 ms idle each             12.3 / 21.1  10.9 / 16.3
    after 100 ms idle, latency 0 us    10.2 / 11.1   9.8 / 10.6

Real-time control stacks do the same: cyclictest (rt-tests) and LinuxCNC write 0 there, Franka's FCI docs ask for
the performance governor and no deep C-states. The kernel honours the smallest request of all processes holding the
file open and drops ours when it is closed -- also when the process dies, so nothing outlives the node. Writing it
needs root or a udev rule (`KERNEL=="cpu_dma_latency", GROUP="realtime", MODE="0660"`); without it the result line
says so and control runs as before. The cost is power (CPUs poll instead of halting while nothing runs); the CPU time
left to other processes is unchanged.

No ROS here: the actor node and the arm node (the sim robot too) hold one while they run (`cpu_latency_us`).
"""

from __future__ import annotations

import os
import struct

DEVICE = "/dev/cpu_dma_latency"


class CpuLatencyHold:
    """While open: no CPU enters an idle state whose exit latency exceeds `max_us` microseconds (negative: ask
    nothing). `held` says whether the request stands; `line` is one log line saying what was asked and got."""

    def __init__(self, max_us: int, device: str = DEVICE) -> None:
        self.max_us, self.held, self._fd = max_us, False, None
        if max_us < 0:
            self.line = "cpu latency: not requested (cpu_latency_us < 0): idle states as the system sets them"
            return
        try:
            self._fd = os.open(device, os.O_WRONLY)
            os.write(self._fd, struct.pack("i", max_us))  # the kernel's binary form: one native int32
        except OSError as err:
            self.close()
            self.line = (
                f"cpu latency: could not hold {max_us} us on {device} ({err.strerror}): idle states as the system "
                f"sets them; run as root or grant the file with a udev rule (robot_rl.acting.cpu_latency)"
            )
            return
        self.held = True
        self.line = f"cpu latency: holding {max_us} us on {device} while this process runs (no deep idle states)"

    def close(self) -> None:
        """Drop the request (closing the file is what the kernel counts)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self.held = None, False

    def __enter__(self) -> CpuLatencyHold:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
