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
  delay      netem on each host's eth0 (egress: one delay per one-way trip) where the kernel has it; else every
             IPv4 frame the bridge forwards goes to an NFQUEUE (br_netfilter, `iptables -A FORWARD -j NFQUEUE`;
             nftables' own `queue` is CONFIG_NFT_QUEUE, often off) and `robot_rl.bench.fleet_delay`, a userspace
             program in the bench namespace, holds each delay ± jitter (normal) before accepting it: also one delay
             per one-way trip. It survives a host's loss (it lives outside the hosts).
Nothing is routed out: the bridge has no uplink and the bench namespace no other interface, so no packet leaves.
Namespace names carry the bench's pid (several benches or tests may run at once); `down()` removes all of them,
and a bench killed with SIGKILL leaves its namespaces (and the nodes in them) to the next one's `clean_stale()`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from robot_rl.bench.fleet_delay import QUEUE_NUM

SUBNET = "10.77.0"  # /24 of the virtual network; host i gets SUBNET.(10 + i)
MULTICAST_ROUTE = "224.0.0.0/4"  # DDS discovery (SPDP) multicast must leave through eth0 (no default route here)
NFT_TABLE = "rrl_fleet"  # nftables table of the loss rule (bridge family, in the bench namespace)
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps named namespaces (shared by every bench on the machine)
STALE_RE = re.compile(r"^rrl(t?)(\d+)_")  # a fleet namespace's name: the pid of the bench (or test, "t") that made it
DELAY_RULE = ["FORWARD", "-j", "NFQUEUE", "--queue-num", str(QUEUE_NUM)]  # iptables: bridged IPv4 -> the delayer


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
    _delayer: subprocess.Popen | None = field(default=None, init=False, repr=False)  # the NFQUEUE delayer, if on
    _delay: tuple[float, float] = field(default=(0.0, 0.0), init=False, repr=False)  # its (delay_ms, jitter_ms)

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
        for _ in range(50):  # a previous fleet's links may still be going (namespaces are removed asynchronously)
            if isolated():
                break
            time.sleep(0.1)
        else:
            raise NetError("the fleet network must be built in a private network namespace (run under `unshare -n`)")
        clean_stale()
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
        """delay ± jitter (normal) on every one-way trip: netem where the kernel has it, else the NFQUEUE delayer."""
        if has_netem():
            for host in self.hosts:
                _sh(*self.exec_prefix(host), "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay",
                    f"{delay_ms}ms", f"{jitter_ms}ms", "distribution", "normal")  # fmt: skip
            return
        if self._delayer is not None and self._delayer.poll() is None and self._delay == (delay_ms, jitter_ms):
            return  # already on (a host that came back needs nothing: the delay lives on the bridge)
        if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
            raise NetError("delay without netem needs br_netfilter (CONFIG_BRIDGE_NETFILTER; `modprobe br_netfilter`)")
        if shutil.which("iptables") is None:
            raise NetError("delay without netem needs iptables (its NFQUEUE target): `apt-get install iptables`")
        self._stop_delayer()
        self._delayer = subprocess.Popen(
            [sys.executable, "-m", "robot_rl.bench.fleet_delay", "--delay-ms", str(delay_ms), "--jitter-ms",
             str(jitter_ms)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        if self._delayer.stdout.readline().strip() != "ready":
            out = self._delayer.communicate()[0].strip().splitlines()
            self._delayer = None
            raise NetError(f"the packet delayer (robot_rl.bench.fleet_delay) did not start: {out[-1:] or 'no output'}")
        self._delay = (delay_ms, jitter_ms)
        _sh("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")  # bridged frames pass iptables FORWARD
        if _sh("iptables", "-C", *DELAY_RULE, check=False).returncode != 0:
            _sh("iptables", "-A", *DELAY_RULE)

    def delayer_alive(self) -> bool:
        """False when the NFQUEUE delayer was started and has died (the bridge then drops every IPv4 frame)."""
        return self._delayer is None or self._delayer.poll() is None

    def _stop_delayer(self) -> None:
        _sh("iptables", "-D", *DELAY_RULE, check=False)  # first: no frame is queued to a delayer that is gone
        if self._delayer is not None:
            self._delayer.terminate()
            try:
                self._delayer.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self._delayer.kill()
                self._delayer.communicate()
            self._delayer = None

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
        """Remove every namespace, the bridge, the loss table and the delayer; never raises (it runs in `finally`)."""
        self._stop_delayer()
        for host in self.hosts:
            _sh("ip", "link", "del", self.port(host), check=False)  # now: a deleted namespace's links go later
            if (NETNS_DIR / self.netns(host)).exists():
                _sh("ip", "netns", "del", self.netns(host), check=False)
        _sh("ip", "link", "del", self.bridge, check=False)
        _sh("nft", "delete", "table", "bridge", NFT_TABLE, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> list[str]:
    """Remove the namespaces a killed bench left in /run/netns (`rrl<pid>_*` whose pid is gone), SIGKILLing the
    nodes still running in them (a bench killed with SIGKILL cannot stop its nodes); the names removed.

    Namespaces of a live pid are left alone: another bench or test may be using them right now."""
    removed = []
    for path in sorted(NETNS_DIR.glob("rrl*_*")) if NETNS_DIR.is_dir() else []:
        m = STALE_RE.match(path.name)
        if m is None or _pid_alive(int(m.group(2))):
            continue
        for pid in _sh("ip", "netns", "pids", path.name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        if _sh("ip", "netns", "del", path.name, check=False).returncode == 0:
            removed.append(path.name)
    return removed
