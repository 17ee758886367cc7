"""A virtual network of hosts on this machine for `robot-rl bench fleet`: one Linux network namespace per host
(the learner, each robot), joined by veth pairs to one bridge, with its own IPv4 address, multicast on, and the
faults of a real network scripted on the wire.

    bench namespace (private: `unshare -n` unless already isolated)
      bridge rrl<tag>br ── rrl<tag>h0 ─ veth ─ eth0 10.77.0.10/24 in netns rrl<tag>_learner
                       ── rrl<tag>h1 ─ veth ─ eth0 10.77.0.11/24 in netns rrl<tag>_robot_1   ...

Faults, on kernels without the netem qdisc (CONFIG_NET_SCH_NETEM off, as on the machines this was written on):
  loss       nftables in the bench namespace: `bridge` family, forward hook, `numgen random mod 100 < P drop`
             (every frame crossing the bridge, both directions, independently)
  partition  the host's bridge port set down (its link drops; the host keeps running) and up again
  host loss  every process of the host's namespace killed with SIGKILL, the namespace deleted (its link goes with
             it), then made again with the same address
  delay      netem on each host's eth0 (egress: one delay per one-way trip) where the kernel has it; else an error
             that says so (the NFQUEUE path -- a userspace program holding packets -- is not built)
Nothing is routed out: the bridge has no uplink and the bench namespace no other interface, so no packet leaves.
Namespace names carry the bench's pid (several benches or tests may run at once); `down()` removes all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.77.0"  # /24 of the virtual network; host i gets SUBNET.(10 + i)
MULTICAST_ROUTE = "224.0.0.0/4"  # DDS discovery (SPDP) multicast must leave through eth0 (no default route here)
NFT_TABLE = "rrl_fleet"  # nftables table of the loss rule (bridge family, in the bench namespace)


class NetError(RuntimeError):
    """A command that builds or changes the virtual network failed; the message has the command and its stderr."""


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def isolated() -> bool:
    """Whether this process's network namespace has no interface but loopback (a private one, e.g. `./run.sh test`'s)."""
    # /proc/net is this process's namespace (/sys/class/net is the one sysfs was mounted in: not the same after unshare)
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return {line.split(":")[0].strip() for line in lines} <= {"lo"}


def has_netem() -> bool:
    """Whether this kernel has the netem qdisc (tried on a throwaway dummy link)."""
    dev = f"rrlnetem{os.getpid() % 100000}"
    if _sh("ip", "link", "add", dev, "type", "dummy", check=False).returncode != 0:
        return False
    try:
        return _sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms", check=False).returncode == 0
    finally:
        _sh("ip", "link", "del", dev, check=False)


@dataclass
class FleetNet:
    """Hosts (names like "learner", "robot_1") on one bridge; build with `up()`, always end with `down()`."""

    hosts: list[str]
    multicast: bool = True  # False: multicast off on every link (discovery must then be unicast: static peers)
    tag: str = field(default_factory=lambda: str(os.getpid()))
    loss_pct: float = 0.0

    @property
    def bridge(self) -> str:
        return f"rrl{self.tag}br"

    def netns(self, host: str) -> str:
        return f"rrl{self.tag}_{host}"

    def port(self, host: str) -> str:
        """The bridge-side end of the host's veth (interface names are at most 15 characters)."""
        return f"rrl{self.tag}h{self.hosts.index(host)}"

    def address(self, host: str) -> str:
        return f"{SUBNET}.{10 + self.hosts.index(host)}"

    def exec_prefix(self, host: str) -> list[str]:
        """Prefix a command with this to run it on `host` (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.netns(host)]

    def up(self) -> None:
        if not isolated():
            raise NetError("the fleet network must be built in a private network namespace (run under `unshare -n`)")
        _sh("ip", "link", "set", "lo", "up")
        _sh("ip", "link", "add", self.bridge, "type", "bridge", "mcast_snooping", "0")
        _sh("ip", "link", "set", self.bridge, "multicast", "on" if self.multicast else "off", "up")
        for host in self.hosts:
            self.add_host(host)
        if self.loss_pct:
            self.set_loss(self.loss_pct)

    def add_host(self, host: str) -> None:
        """The host's namespace, its veth to the bridge, address, loopback and multicast route."""
        ns, port, mc = self.netns(host), self.port(host), "on" if self.multicast else "off"
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _sh("ip", "link", "set", port, "master", self.bridge, "multicast", mc, "up")
        inside = ["ip", "netns", "exec", ns]
        _sh(*inside, "ip", "link", "set", "lo", "up")
        # a fixed MAC per host: a host that comes back is the same NIC, so its peers' ARP caches stay right
        mac = f"02:77:00:00:{self.hosts.index(host) // 256:02x}:{self.hosts.index(host) % 256:02x}"
        _sh(*inside, "ip", "link", "set", "eth0", "address", mac, "multicast", mc, "up")
        _sh(*inside, "ip", "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
        if self.multicast:
            _sh(*inside, "ip", "route", "add", MULTICAST_ROUTE, "dev", "eth0")

    def set_loss(self, pct: float) -> None:
        """Drop `pct` % of the frames crossing the bridge (0 removes the rule)."""
        self.loss_pct = pct
        _sh("nft", "delete", "table", "bridge", NFT_TABLE, check=False)
        if pct <= 0:
            return
        _sh("nft", "add", "table", "bridge", NFT_TABLE)
        _sh("nft", "add", "chain", "bridge", NFT_TABLE, "forward", "{ type filter hook forward priority 0; }")
        # per mille, so 0.5 % steps work; 100 % is a plain drop (numgen's values stop at mod - 1)
        match = [] if pct >= 100 else ["numgen", "random", "mod", "1000", "<", str(round(pct * 10))]
        _sh("nft", "add", "rule", "bridge", NFT_TABLE, "forward", *match, "drop")

    def set_delay(self, delay_ms: float, jitter_ms: float) -> None:
        """netem delay ± jitter on every host's egress; NetError where the kernel has no netem."""
        if not has_netem():
            raise NetError(
                "--delay needs the netem qdisc, which this kernel lacks (CONFIG_NET_SCH_NETEM is off); "
                "run without --delay, or on a kernel with netem (`modprobe sch_netem`)"
            )
        for host in self.hosts:
            _sh(*self.exec_prefix(host), "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay",
                f"{delay_ms}ms", f"{jitter_ms}ms", "distribution", "normal")  # fmt: skip

    def set_link(self, host: str, up: bool) -> None:
        """Partition `host` (its bridge port down) or join it again."""
        _sh("ip", "link", "set", self.port(host), "up" if up else "down")

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL every process in the host's namespace and delete the namespace (its link with it); the pids."""
        pids = [int(p) for p in _sh("ip", "netns", "pids", self.netns(host), check=False).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _sh("ip", "link", "del", self.port(host))  # the pair goes now (a deleted namespace is cleaned up later)
        _sh("ip", "netns", "del", self.netns(host))
        return pids

    def rx_bytes(self, host: str) -> int:
        """Bytes the host's eth0 has received (everything DDS sent it, discovery included)."""
        path = Path("/sys/class/net/eth0/statistics/rx_bytes")
        return int(_sh(*self.exec_prefix(host), "cat", str(path)).stdout)

    def down(self) -> None:
        """Remove every namespace, the bridge and the loss table; never raises (it runs in `finally`)."""
        for host in self.hosts:
            if Path("/run/netns", self.netns(host)).exists():
                _sh("ip", "netns", "del", self.netns(host), check=False)
        _sh("ip", "link", "del", self.bridge, check=False)
        _sh("nft", "delete", "table", "bridge", NFT_TABLE, check=False)
