"""The fleet benchmark's virtual network and a short fleet: robots and the learner on separate network namespaces.

Runs inside `./run.sh test`'s private network namespace (root; `nft` from Debian's nftables). The network tests send
real UDP between namespaces; the fleet test runs real sim robots, actors and a learner over DDS across the bridge
with 5 % loss, 20 ± 5 ms delay, multicast off (static peers) and the lossy-network Fast DDS profile, and asserts
exactly-once delivery and that pushed weights reached both robots.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robot_rl.bench.fleet_cpus import allowed_cpus, cpu_seconds, host_cpu_sets, taskset_prefix
from robot_rl.bench.fleet_net import DELAY_RULE, FleetNet, clean_stale, isolated
from robot_rl.bench.fleet_results import (
    FleetBenchConfig,
    push_latencies_ms,
    tick_jitter,
    updates_done,
    window_updates,
)

pytestmark = pytest.mark.skipif(
    not (isolated() and shutil.which("nft") and shutil.which("iptables")),
    reason="needs a private network namespace (./run.sh test), nft and iptables",
)

# One UDP datagram from a host to another, inside their namespaces: "got" on the receiver, or "none" after 1.5 s.
RECV = (
    "import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',9999)); s.settimeout(1.5)\n"
    "print('ready', flush=True)\ntry: s.recv(64); print('got')\nexcept OSError: print('none')"
)
SEND = "import socket,sys,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n" \
    "for _ in range(5): s.sendto(b'x',(sys.argv[1],9999)); time.sleep(0.05)"  # fmt: skip


def _udp_arrives(net: FleetNet, src: str, dst: str) -> bool:
    recv = subprocess.Popen([*net.exec_prefix(dst), sys.executable, "-c", RECV], stdout=subprocess.PIPE, text=True)
    assert recv.stdout.readline().strip() == "ready"  # bound before anything is sent
    subprocess.run([*net.exec_prefix(src), sys.executable, "-c", SEND, net.address(dst)], check=True, timeout=30)
    out, _ = recv.communicate(timeout=30)
    return out.strip() == "got"


def test_hosts_reach_each_other_only_while_their_link_is_up_and_not_under_total_loss():
    net = FleetNet(["learner", "robot_1"], tag=f"t{os.getpid()}")
    try:
        net.up()
        assert net.address("learner") == "10.77.0.10" and net.address("robot_1") == "10.77.0.11"
        assert _udp_arrives(net, "robot_1", "learner")
        rx = net.rx_bytes("learner")
        assert rx > 5 * 28  # five datagrams (plus ARP) arrived on the learner's link
        net.set_link("robot_1", up=False)  # partition
        assert not _udp_arrives(net, "robot_1", "learner")
        net.set_link("robot_1", up=True)
        net.set_loss(100)  # the nft rule drops every frame on the bridge
        assert not _udp_arrives(net, "robot_1", "learner")
        net.set_loss(0)
        assert _udp_arrives(net, "learner", "robot_1")
        net.kill_host("learner")  # the host is gone, namespace and link
        assert not Path("/run/netns", net.netns("learner")).exists()
        net.add_host("learner")
        assert _udp_arrives(net, "robot_1", "learner")
    finally:
        net.down()
    assert not Path("/run/netns", net.netns("robot_1")).exists()
    assert subprocess.run(["ip", "link", "show", net.bridge], capture_output=True).returncode != 0


# A UDP echo between two hosts: the client sends N numbered datagrams 15 ms apart and prints each round trip in ms.
ECHO = (
    "import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',9998)); s.settimeout(5)\n"
    "print('ready', flush=True)\nwhile True:\n  try: data, peer = s.recvfrom(64)\n  except OSError: break\n"
    "  s.sendto(data, peer)"
)
PING = (
    "import json,socket,struct,sys,threading,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3)\n"
    "n=int(sys.argv[2]); sent={}; rtt={}\n"
    "def recv():\n  while len(rtt) < n:\n    try: d=s.recv(64)\n    except OSError: return\n"
    "    i=struct.unpack('!I',d)[0]; rtt[i]=1e3*(time.monotonic()-sent[i])\n"
    "t=threading.Thread(target=recv); t.start()\n"
    "for i in range(n): sent[i]=time.monotonic(); s.sendto(struct.pack('!I',i),(sys.argv[1],9998)); time.sleep(0.015)\n"
    "t.join(); print(json.dumps(sorted(rtt.values())))"
)


def _round_trips_ms(net: FleetNet, src: str, dst: str, n: int) -> list[float]:
    echo = subprocess.Popen([*net.exec_prefix(dst), sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout.readline().strip() == "ready"
        done = subprocess.run([*net.exec_prefix(src), sys.executable, "-c", PING, net.address(dst), str(n)],
                              capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        return json.loads(done.stdout)
    finally:
        echo.kill()
        echo.wait()


def test_a_delay_with_jitter_holds_every_one_way_trip_on_a_kernel_without_netem():
    """50 ± 15 ms one way: a round trip crosses the bridge twice, so its median is 100 ms and its spread
    sqrt(2) * 15 = 21 ms (the NFQUEUE delayer here, netem where the kernel has it)."""
    net = FleetNet(["learner", "robot_1"], tag=f"t{os.getpid()}")
    try:
        net.up()
        healthy = _round_trips_ms(net, "robot_1", "learner", 20)
        net.set_delay(50.0, 15.0)
        net.set_delay(50.0, 15.0)  # idempotent: the same delayer stays
        delayed = _round_trips_ms(net, "robot_1", "learner", 80)
        assert net.delayer_alive()
    finally:
        net.down()
    assert len(delayed) >= 76, f"{len(delayed)} of 80 came back"  # nothing lost (a few may be late on a busy machine)
    assert np.median(healthy) < 20, healthy  # veths and a bridge alone: well under a millisecond when idle
    assert 80 <= np.median(delayed) <= 120, f"median {np.median(delayed):.1f} ms, want 100 +- 20 %"
    spread_ms = np.std(delayed)
    assert 0.6 * 21.2 <= spread_ms <= 1.6 * 21.2, f"std {spread_ms:.1f} ms, want about 21"
    assert subprocess.run(["iptables", "-C", *DELAY_RULE], capture_output=True).returncode != 0, "rule removed"


def test_a_killed_benchs_namespaces_and_their_processes_are_removed_at_the_next_start():
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs: the "bench" that was SIGKILLed
    stale = FleetNet(["robot_1"], tag=str(dead.pid))
    subprocess.run(["ip", "netns", "add", stale.netns("robot_1")], check=True)
    node = subprocess.Popen([*stale.exec_prefix("robot_1"), "sleep", "600"])  # an orphaned node in it
    live = FleetNet(["robot_1"], tag=f"t{os.getpid()}")
    subprocess.run(["ip", "netns", "add", live.netns("robot_1")], check=True)  # a running test's: must stay
    try:
        assert stale.netns("robot_1") in clean_stale()
        assert node.wait(timeout=10) == -9
        assert not Path("/run/netns", stale.netns("robot_1")).exists()
        assert Path("/run/netns", live.netns("robot_1")).exists()
    finally:
        node.kill()
        subprocess.run(["ip", "netns", "del", stale.netns("robot_1")], capture_output=True)
        subprocess.run(["ip", "netns", "del", live.netns("robot_1")], capture_output=True)


def test_push_latency_pairs_each_load_with_the_latest_publish_of_its_version(tmp_path):
    learner_1, learner_2, actor = tmp_path / "l1.log", tmp_path / "l2.log", tmp_path / "a.log"
    learner_1.write_text(
        "[INFO] [100.000000000] [learner]: published policy version 0 (full, 0.30 MB)\n"
        "[INFO] [110.000000000] [learner]: published policy version 50 (delta, 0.10 MB)\n"
    )
    learner_2.write_text("[INFO] [200.000000000] [learner]: published policy version 50 (full, 0.30 MB)\n")
    actor.write_text(
        "[INFO] [100.250000000] [robot_1.actor]: policy v0 loaded from /learner/policy\n"
        "[INFO] [110.040000000] [robot_1.actor]: policy v50 loaded from /learner/policy_delta\n"
        "[INFO] [200.500000000] [robot_1.actor]: policy v50 loaded from /learner/policy\n"
        "[INFO] [201.000000000] [robot_1.actor]: policy v50 loaded from /learner/policy\n"  # the same push again
    )
    assert push_latencies_ms([learner_1, learner_2], actor) == pytest.approx([250.0, 40.0, 500.0])


def test_updates_count_every_rise_of_the_counter_and_go_on_from_a_restarted_learners_checkpoint():
    # 100 at the window's start; 100 -> 180 before the kill; the restart resumes from a checkpoint at 150, so the
    # counter falls, then rises to 230; a line rebuilt after the crash has no count
    samples = [(100, 10.0), (130, 11.0), (180, 13.0), (None, None), (160, 12.5), (230, 14.5)]
    assert updates_done(samples) == (80 + 70, 3.0 + 2.0)
    assert updates_done([(None, None), (50, 1.0)]) == (0, 0.0) and updates_done([]) == (0, 0.0)


def test_window_updates_are_the_policy_versions_published_last_before_each_end_of_the_window(tmp_path):
    log = tmp_path / "learner_1.log"
    log.write_text("".join(f"[INFO] [{100 + t}.000000000] [learner]: published policy version {25 * t} (delta, "
                           "0.04 MB)\n" for t in range(0, 10)))  # fmt: skip
    assert window_updates([log], 102.5, 107.0) == 25 * 7 - 25 * 2
    assert window_updates([log], 99.0, 107.0) == 25 * 7  # a fresh learner: no agent, no update before version 0
    assert window_updates([log], 109.5, 120.0) == 0  # nothing published in it
    assert window_updates([log], 50.0, 60.0) is None  # nothing published at all yet


def test_host_cpu_sets_give_the_learner_cpus_of_its_own_and_refuse_what_no_host_could_have():
    robots = ["robot_1", "robot_2", "robot_3"]
    assert host_cpu_sets("auto", "learner", robots, {0, 1}) == {"learner": [0], **{r: [1] for r in robots}}
    assert host_cpu_sets("auto", "learner", robots, {0, 1, 2, 3, 4}) == {
        "learner": [0, 1],
        **{r: [2, 3, 4] for r in robots},
    }
    assert host_cpu_sets("auto", "learner", robots, {3}) == {}  # one CPU: nothing to give the learner alone
    assert host_cpu_sets("none", "learner", robots, {0, 1}) == {}
    got = host_cpu_sets("learner=0,2,robots=1,3,robot_2=4-5", "learner", robots, set(range(6)))
    assert got == {"learner": [0, 2], "robot_1": [1, 3], "robot_2": [4, 5], "robot_3": [1, 3]}
    for spec, message in [
        ("learner=0", r"give every host CPUs \(missing \['robot_1'"),
        ("learner=7,robots=1", r"learner asks for CPUs \[7\], this process may use \[0, 1\]"),
        ("learner=0,robots=1,gpu_box=1", r"unknown host \['gpu_box'\]"),
        ("learner=0,robots=one", r"'one' is not a CPU list"),
    ]:
        with pytest.raises(ValueError, match=message):
            host_cpu_sets(spec, "learner", robots, {0, 1})
    with pytest.raises(ValueError, match="host CPUs"):
        FleetBenchConfig(robots=2, host_cpus="learner=0")


def test_robot_hosts_pinned_to_shared_cpus_get_actors_without_real_time_priority_unless_asked(tmp_path):
    from robot_rl.bench.fleet import host_commands

    def priority(cfg: FleetBenchConfig, cpus: dict) -> list[str]:
        actor = host_commands(cfg, tmp_path, cpus)["robot_2"]["/robot_2/actor"]
        return [arg for arg in actor if arg.startswith("control_priority:=")]

    shared = {"learner": [0], "robot_1": [1], "robot_2": [1]}
    assert priority(FleetBenchConfig(robots=2), shared) == ["control_priority:=0"]
    assert priority(FleetBenchConfig(robots=2, sets=("actor:control_priority:=40",)), shared) == [
        "control_priority:=40"
    ]
    assert priority(FleetBenchConfig(robots=2), {"learner": [0], "robot_1": [1], "robot_2": [2]}) == []  # own CPUs
    assert priority(FleetBenchConfig(robots=2), {}) == []  # not pinned: the table's setting


# A process that starts a busy thread after it began: that thread must be on the process's CPUs too.
BUSY = "import threading,time\nthreading.Thread(target=lambda: sum(range(10**9)), daemon=True).start()\ntime.sleep(30)"


def test_a_host_pinned_with_taskset_keeps_every_thread_on_its_cpus_and_its_cpu_time_is_read_back():
    cpu = min(os.sched_getaffinity(0))
    proc = subprocess.Popen([*taskset_prefix([cpu]), sys.executable, "-c", BUSY])
    try:
        deadline = time.monotonic() + 20
        while (cpu_seconds(proc.pid) or 0) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the busy thread has run (on a loaded machine, slowly)
        assert len(list(Path(f"/proc/{proc.pid}/task").iterdir())) >= 2  # main thread + the busy one
        assert allowed_cpus(proc.pid) == [cpu]
        assert cpu_seconds(proc.pid) >= 0.3
    finally:
        proc.kill()
        proc.wait()
    assert allowed_cpus(proc.pid) == [] and cpu_seconds(proc.pid) is None  # gone


def test_tick_jitter_splits_an_actors_ticks_by_the_network_phase_they_ended_in(tmp_path):
    log = tmp_path / "robot_1_timing.jsonl"
    ends = [1000.0 + 0.1 * i for i in range(1, 301)]  # 300 ticks of 100 ms, 1000.1 .. 1030.0
    periods = [100.0] * 100 + [100.0 + (30.0 if i % 2 else -30.0) for i in range(100)] + [100.0] * 100
    log.write_text(
        json.dumps({"event": "policy", "version": 0, "wall_time": 1000.0}) + "\n"
        + json.dumps({"event": "episode", "period_ms": periods[:150], "period_end_wall": ends[:150]}) + "\n"
        + json.dumps({"event": "episode", "period_ms": periods[150:], "period_end_wall": ends[150:]}) + "\n"
        + '{"event": "episo'  # torn by the actor's exit
    )  # fmt: skip
    out = tick_jitter(log, 1000.0, 1025.0, [(1010.05, 1020.05, "partitioned")], "healthy")
    assert out["healthy"]["ticks"] == 100 + 50 and out["partitioned"]["ticks"] == 100
    assert out["healthy"]["jitter_p99_ms"] == pytest.approx(0.0)
    assert out["partitioned"]["jitter_p50_ms"] == pytest.approx(30.0)
    assert out["partitioned"]["period_p50_ms"] == pytest.approx(100.0)


@pytest.mark.ros
@pytest.mark.timeout(300)
def test_two_robots_over_a_lossy_delayed_network_without_multicast_deliver_every_episode_once_and_get_the_weights(
    tmp_path,
):
    from robot_rl.bench.fleet import run_fleet

    cfg = FleetBenchConfig(
        robots=2,
        duration_s=25.0,
        loss_pct=5.0,
        delay_ms=20.0,  # the NFQUEUE delayer on this kernel: DDS over a held, reordering link
        jitter_ms=5.0,
        real_time_factor=3.0,
        discovery="static",  # ROS_STATIC_PEERS, multicast off on every link
        fastdds_profile=str(Path(__file__).resolve().parents[1] / "launch/config/fastdds_lossy_network.xml"),
        sets=(
            "learner:min_steps_to_train:=150",
            "learner:publish_every_updates:=25",
            "learner:utd_ratio:=1",
            "learner:wandb_mode:=disabled",
        ),
        out=str(tmp_path),
    )
    result = run_fleet(cfg)
    report = "\n".join(str(d) for d in result.deliveries) + f"\n{result.notes}"
    assert len(result.deliveries) == 2
    assert all(d.completed >= 2 for d in result.deliveries), report
    assert result.exactly_once, report
    assert result.pushes >= 2, report
    for actor, latencies in result.push_latency_ms.items():
        assert len(latencies) >= 2, f"{actor} loaded {latencies}"  # the first policy and at least one update
        assert 0 < min(latencies) and max(latencies) < 30_000, latencies
    assert result.rx_mb > 0.01 and result.episodes_in >= 2
    assert result.updates > 0 and result.update_s > 0, report  # from the learner's episode log
    expected_cpus = cfg.cpu_sets("learner", ["robot_1", "robot_2"])  # auto: learner, robots apart (>= 2 CPUs)
    assert result.host_cpus == expected_cpus, result.host_cpus  # read back from every node's threads
    assert result.learner_cpu_s > 0 and result.load_avg[1] > 0
    for actor, phases in result.tick_jitter.items():  # every actor's control ticks, measured under the lossy link
        assert phases["lossy"]["ticks"] > 50 and phases["lossy"]["period_p50_ms"] > 0, (actor, phases)
    assert not list(Path("/run/netns").glob(f"rrl{os.getpid()}_*")), "the bench removed its namespaces"
