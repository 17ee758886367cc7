"""The fleet benchmark's virtual network and a short fleet: robots and the learner on separate network namespaces.

Runs inside `./run.sh test`'s private network namespace (root; `nft` from Debian's nftables). The network tests send
real UDP between namespaces; the fleet test runs real sim robots, actors and a learner over DDS across the bridge
with 5 % loss, multicast off (static peers) and the lossy-network Fast DDS profile, and asserts exactly-once
delivery and that pushed weights reached both robots.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from robot_rl.bench.fleet_net import FleetNet, isolated
from robot_rl.bench.fleet_results import FleetBenchConfig, push_latencies_ms

pytestmark = pytest.mark.skipif(
    not (isolated() and shutil.which("nft")), reason="needs a private network namespace (./run.sh test) and nft"
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


@pytest.mark.ros
@pytest.mark.timeout(300)
def test_two_robots_over_a_lossy_network_without_multicast_deliver_every_episode_exactly_once_and_get_the_weights(
    tmp_path,
):
    from robot_rl.bench.fleet import run_fleet

    cfg = FleetBenchConfig(
        robots=2,
        duration_s=25.0,
        loss_pct=5.0,
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
    assert not list(Path("/run/netns").glob(f"rrl{os.getpid()}_*")), "the bench removed its namespaces"
