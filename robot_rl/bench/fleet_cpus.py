"""CPUs of their own for the fleet's virtual hosts: which CPUs each host's processes may run on.

Network namespaces separate the hosts' networks, not their CPUs: on one machine 4 sim robots and 4 actors take
cores the learner needs, which separate machines (the deployment the fleet models) would not. So each host's
processes are pinned to a CPU set (`taskset`, inherited by every thread they start), and the bench itself and the
packet delayer (the "network") run on the robots' CPUs, leaving the learner's CPUs to the learner.

    spec "auto"   the learner gets the first half of the CPUs this process may use (at least 1), the robots the
                  rest -- on a 2-core machine learner=0, robots=1; fewer than 2 CPUs: "none"
    spec "none"   no pinning (every process on every CPU)
    spec "learner=0,robots=1-3"   host=CPU list, comma-separated; a list may hold ranges and several items
                  ("learner=0,2,robots=1,3"); `robots` is every robot host, `robot_2=3` one of them (it wins)
"""

from __future__ import annotations

import os
from pathlib import Path

HOST_CPUS_DEFAULT = "auto"


def parse_cpu_list(text: str) -> list[int]:
    """ "0", "1-3", "0,2-3" -> sorted CPU numbers; ValueError naming the text if it is not one."""
    cpus: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU list like 0, 1-3 or 0,2") from None
        if a < 0 or b < a:
            raise ValueError(f"{text!r} is not a CPU list like 0, 1-3 or 0,2")
        cpus.update(range(a, b + 1))
    if not cpus:
        raise ValueError(f"{text!r} names no CPU")
    return sorted(cpus)


def host_cpu_sets(
    spec: str, learner: str, robots: list[str], available: set[int] | None = None
) -> dict[str, list[int]]:
    """host -> the CPUs its processes run on ({} for "none"); ValueError naming what is wrong (an unknown host, a
    CPU this process may not use, a host left without CPUs)."""
    available = set(os.sched_getaffinity(0)) if available is None else set(available)
    cpus = sorted(available)
    if spec == "none" or (spec == "auto" and len(cpus) < 2):
        return {}
    if spec == "auto":
        half = max(1, len(cpus) // 2)
        return {learner: cpus[:half], **{r: cpus[half:] for r in robots}}
    named: dict[str, str] = {}
    host = None
    for token in spec.split(","):
        name, eq, cpu = token.partition("=")
        if eq:
            host = name.strip()
            named[host] = cpu
        elif host is None:
            raise ValueError(f"host CPUs {spec!r}: start with host=CPUs, e.g. learner=0,robots=1")
        else:
            named[host] += "," + token
    valid = {learner, "robots", *robots}
    unknown = sorted(set(named) - valid)
    if unknown:
        raise ValueError(f"host CPUs {spec!r}: unknown host {unknown}; valid: {sorted(valid)}")
    try:
        sets = {h: parse_cpu_list(c) for h, c in named.items()}
    except ValueError as e:
        raise ValueError(f"host CPUs {spec!r}: {e}") from None
    for h, s in sets.items():
        if not set(s) <= available:
            raise ValueError(f"host CPUs {spec!r}: {h} asks for CPUs {s}, this process may use {cpus}")
    out = {learner: sets[learner]} if learner in sets else {}
    out |= {r: sets.get(r, sets.get("robots")) for r in robots if r in sets or "robots" in sets}
    if out and len(out) != 1 + len(robots):
        missing = [h for h in (learner, *robots) if h not in out]
        raise ValueError(f"host CPUs {spec!r}: give every host CPUs (missing {missing}), or 'none'")
    return out


def shares_cpus(sets: dict[str, list[int]], hosts: list[str]) -> bool:
    """Whether two of `hosts` are pinned to overlapping CPU sets (not pinned: False)."""
    pinned = [set(sets[h]) for h in hosts if h in sets]
    return any(a & b for i, a in enumerate(pinned) for b in pinned[i + 1 :])


def taskset_prefix(cpus: list[int] | None) -> list[str]:
    """Prefix a command with this to run it (and every thread and child it starts) on `cpus` only."""
    return ["taskset", "--cpu-list", ",".join(map(str, cpus))] if cpus else []


def allowed_cpus(pid: int) -> list[int]:
    """The CPUs any thread of process `pid` may run on (their union), read back from /proc; [] if it is gone."""
    out: set[int] = set()
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # a thread that just ended
        for line in text.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                out.update(parse_cpu_list(line.split(":", 1)[1].strip()))
    return sorted(out)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used (all its threads), or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
