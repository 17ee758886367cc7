"""Delay and jitter on the fleet's bridge without netem: a userspace program holding packets on an NFQUEUE.

Kernels without the netem qdisc (CONFIG_NET_SCH_NETEM off) still have NFQUEUE (CONFIG_NETFILTER_NETLINK_QUEUE and
the xtables NFQUEUE target). `robot_rl.bench.fleet_net` sends every IPv4 frame the bridge forwards to queue
`QUEUE_NUM` (br_netfilter + `iptables -A FORWARD -j NFQUEUE`); this program, run in the same namespace, reads each
queued packet's id (metadata only, not its bytes), holds it `delay_ms` + N(0, `jitter_ms`) (clipped at 0: the
normal distribution of `netem delay D J distribution normal`), and then gives the kernel an accept verdict, which
sends it on. A frame crosses the bridge once per one-way trip, so a round trip between two hosts takes two delays.
Verdicts may come in any order, so jitter reorders packets, as netem does.

It speaks nfnetlink directly over a raw netlink socket (linux/netfilter/nfnetlink_queue.h): no C library, no
compiler. Run: `python -m robot_rl.bench.fleet_delay --delay-ms 50 --jitter-ms 20`; it prints "ready" once bound,
and on SIGTERM/SIGINT unbinds and prints how many packets it held.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

QUEUE_NUM = 7700  # NFQUEUE number the bench's iptables rule sends to (queues are per network namespace)
NETLINK_NETFILTER = 12
SOL_NETLINK, NETLINK_NO_ENOBUFS = 270, 5
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2  # enum nfqnl_attr_type
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1  # the packet's metadata only: its bytes stay in the kernel
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1
NLMSG_HDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
NFGENMSG = struct.Struct("=BBH")  # family, version, resource id (the queue number, big-endian)
QUEUE_MAXLEN = 65536  # packets the kernel may hold for us (its default 1024 drops bursts of a camera episode)


class QueueError(OSError):
    """The kernel refused a queue command (e.g. another program holds the queue)."""


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _message(msg_type: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body


def verdict(queue: int, packet_id: int) -> bytes:
    """The accept verdict for one queued packet."""
    return _message(NFQNL_MSG_VERDICT, queue, _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)))


def packet_ids(data: bytes) -> list[int]:
    """The ids of the queued packets in one datagram from the kernel (several netlink messages may share it)."""
    ids, at = [], 0
    while at + NLMSG_HDR.size <= len(data):
        length, msg_type, _, _, _ = NLMSG_HDR.unpack_from(data, at)
        if length < NLMSG_HDR.size:
            break
        if msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            a, end = at + NLMSG_HDR.size + NFGENMSG.size, at + length
            while a + 4 <= end:
                a_len, a_type = struct.unpack_from("=HH", data, a)
                if a_len < 4:
                    break
                if a_type & 0x3FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, a + 4)[0])
                a += (a_len + 3) & ~3
        at += (length + 3) & ~3
    return ids


class DelayQueue:
    """A bound NFQUEUE whose packets are released after delay_ms + N(0, jitter_ms), clipped at 0."""

    def __init__(self, delay_ms: float, jitter_ms: float, queue: int = QUEUE_NUM, seed: int | None = None) -> None:
        self.delay_s, self.jitter_s, self.queue = delay_ms / 1e3, jitter_ms / 1e3, queue
        self.rng = random.Random(seed)
        self.held: list[tuple[float, int]] = []  # heap of (release monotonic time, packet id)
        self.packets, self.max_held, self._seq = 0, 0, 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root): room for bursts
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
        self._config(_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
        self._config(_attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN)))

    def _config(self, attrs: bytes) -> None:
        """Send a config command and wait for its acknowledgement; QueueError if the kernel refused it. Packets
        queued meanwhile (traffic may already flow) are held like any other."""
        self._seq += 1
        self.sock.send(_message(NFQNL_MSG_CONFIG, self.queue, attrs, NLM_F_REQUEST | NLM_F_ACK, self._seq))
        while True:
            reply = self.sock.recv(65536)
            _, msg_type, _, seq, _ = NLMSG_HDR.unpack_from(reply)
            if msg_type != NLMSG_ERROR or seq != self._seq:
                self._hold(packet_ids(reply), time.monotonic())
                continue
            if err := -struct.unpack_from("=i", reply, NLMSG_HDR.size)[0]:
                raise QueueError(err, f"NFQUEUE {self.queue} config refused: {errno.errorcode.get(err, err)}")
            return

    def _hold(self, ids: list[int], now: float) -> None:
        for pid in ids:
            hold_s = max(0.0, self.rng.gauss(self.delay_s, self.jitter_s) if self.jitter_s else self.delay_s)
            heapq.heappush(self.held, (now + hold_s, pid))
        self.packets += len(ids)
        self.max_held = max(self.max_held, len(self.held))

    def run(self, stop: list[bool]) -> None:
        """Hold and release packets until `stop[0]` is set."""
        while not stop[0]:
            now = time.monotonic()
            timeout = max(0.0, self.held[0][0] - now) if self.held else 0.2
            try:
                ready = select.select([self.sock], [], [], timeout)[0]
            except InterruptedError:
                continue
            now = time.monotonic()
            if ready:
                for _ in range(64):  # drain what is there, without starving the releases
                    try:
                        data = self.sock.recv(65536, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    self._hold(packet_ids(data), now)
            self.release(time.monotonic())

    def release(self, now: float) -> None:
        """Accept every packet whose time has come, in one send."""
        out = []
        while self.held and self.held[0][0] <= now:
            out.append(verdict(self.queue, heapq.heappop(self.held)[1]))
        for at in range(0, len(out), 1000):  # ~32 kB per datagram: within the socket's send buffer
            self.sock.send(b"".join(out[at : at + 1000]))

    def close(self) -> None:
        self.release(float("inf"))  # what is still held goes out now
        try:
            self._config(_attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0)))
        finally:
            self.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="mean hold per packet")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="standard deviation of the hold")
    parser.add_argument("--queue", type=int, default=QUEUE_NUM, help=f"NFQUEUE number (default {QUEUE_NUM})")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    stop = [False]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.__setitem__(0, True))
    dq = DelayQueue(args.delay_ms, args.jitter_ms, args.queue, args.seed)
    print("ready", flush=True)
    try:
        dq.run(stop)
    finally:
        dq.close()
    print(f"held {dq.packets} packets, at most {dq.max_held} at once", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
