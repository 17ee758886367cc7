"""`robot_rl.cpu.keep_freed_memory`: large tensors reuse freed memory instead of page-faulting fresh mmaps."""

import subprocess
import sys
import textwrap

import pytest

# Allocates and writes 14 tensors of 8-8.5 MiB, then frees them all (as an update's temporaries are), ten times
# after one warm-up round, and prints the page faults per allocation. A fresh interpreter: the setting is per process.
_PROBE = textwrap.dedent("""
    import resource, sys, torch
    from robot_rl.cpu import keep_freed_memory
    if sys.argv[1] == "tuned":
        assert keep_freed_memory() and keep_freed_memory()  # applies, and a second call is harmless
    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    sizes = [(2 << 20) + 4096 * i for i in range(0, 40, 3)]  # float32 elements: 8-8.5 MiB each
    def update():  # an update's temporaries: all alive together, then all freed
        live = [torch.ones(n) for n in sizes]
        del live
    update()
    f0 = faults()
    for _ in range(10):
        update()
    print((faults() - f0) / (10 * len(sizes)))
""")


def _faults_per_allocation(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_large_tensors_stop_page_faulting_once_freed_memory_is_kept():
    plain, tuned = _faults_per_allocation("plain"), _faults_per_allocation("tuned")
    # An 8 MiB tensor is 2048 pages. glibc's default gives much of the freed memory back to the OS each round
    # (measured 230-2100 faults per tensor); kept memory faults only where the heap first grows (16-30).
    assert tuned < 100, (plain, tuned)
    assert plain > 2 * tuned, (plain, tuned)  # the probe sees the faults it is meant to
