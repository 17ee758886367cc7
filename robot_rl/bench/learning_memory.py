"""How many runs of a learning grid fit in this machine's memory at once.

One core per run is not the only limit: a pixel run holds its online replay in RAM (uint8 frames of every camera,
`robot_rl.replay.sizing.row_bytes` per transition), and a run's replay never holds more transitions than the run
takes env steps, so a run peaks near `RUN_OVERHEAD_GB[obs] + row_bytes x min(capacity, steps)`. Measured on
peg_insert from pixels (2 cameras 128x128, `--replay-capacity 32000`): 2.8 GB at the start, 3.0 GB at 6 k env
steps, ~4.5 GB at 30 k; five such runs on a 24 GB machine had one killed by the kernel's out-of-memory killer.
`--jobs 0` (the default) therefore starts at most as many runs as fit in the memory available when the grid
starts; an explicit `--jobs` above that is kept, with a warning line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robot_rl.replay.sizing import auto_capacity, row_bytes

RUN_OVERHEAD_GB = {"state": 1.0, "pixels": 1.5}  # torch, MuJoCo and its renderer, the frozen trunk, feature caches
GB = 1e9


def replay_capacity_arg(args: Sequence[str]) -> int | None:
    """The last `--replay-capacity N` (or `--replay-capacity=N`) in `args`; None when absent or 0 (automatic)."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--replay-capacity" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--replay-capacity="):
            value = arg.partition("=")[2]
    try:
        return int(value) or None if value is not None else None
    except ValueError:
        return None  # the run itself refuses it, in its own words


def run_bytes(task: str, obs: str, steps: int, args: Sequence[str]) -> tuple[int, str]:
    """(peak bytes of one run, how they were counted) for a run of `steps` env steps with `robot-rl train` `args`."""
    from robot_rl.acting.config import ActorConfig

    spec = ActorConfig(task=task, obs_mode=obs).layout().obs_spec()  # the sim env's layout (cameras, image size)
    capacity = replay_capacity_arg(args) or auto_capacity(spec)
    rows = min(capacity, steps)
    replay = row_bytes(spec) * rows
    overhead = int(RUN_OVERHEAD_GB.get(obs, 1.5) * GB)
    return replay + overhead, f"a replay of {rows} transitions ({replay / GB:.1f} GB) + ~{overhead / GB:.1f} GB"


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """MemAvailable (what new processes can take without swapping), None where the kernel does not say."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_jobs(per_run: int, available: int | None) -> int | None:
    """Runs of `per_run` bytes that fit in `available` (at least 1); None when the available memory is unknown."""
    if available is None:
        return None
    return max(1, available // max(per_run, 1))


def jobs_line(cores: int, jobs: int, fit: int | None, per_run: int, how: str, available: int | None) -> str:
    """One line: how many runs start at once and why (cores, memory)."""
    runs = f"{jobs} run{'s' if jobs != 1 else ''} at once"
    if fit is None:
        return f"bench learning: {runs} ({cores} cores; available memory unknown)"
    mem = f"{available / GB:.1f} GB available, ~{per_run / GB:.1f} GB per run: {how}"
    warn = f"; more than the {fit} that fit: runs may be killed for memory" if jobs > fit else ""
    return f"bench learning: {runs} ({cores} cores; memory {mem}{warn})"
