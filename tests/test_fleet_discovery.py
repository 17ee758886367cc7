"""Unicast discovery chosen from a node table: a setup's `env` (ROS_STATIC_PEERS, the Fast DDS profile) reaches
every node `robot-rl up` starts, with `{launch_dir}` filled in, and `--static-peers` wins over the table's peers.
(The bench fleet test runs real nodes that discover each other through ROS_STATIC_PEERS with multicast off.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from robot_rl.nodes.table import TableError, load_table

ROBOT_RL = str(Path(sys.executable).parent / "robot-rl")
NODES = """nodes:
  - name: sim_robot
    package: robot_rl
    executable: robot-rl-sim-node
    mode: any
"""


def _launch_dir(tmp_path: Path, env_block: str) -> Path:
    (tmp_path / "setups").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "setups" / "unicast.yaml").write_text("description: two sites, no multicast\n" + NODES + env_block)
    return tmp_path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "ROS_STATIC_PEERS")}


def test_a_tables_env_sets_static_peers_and_the_dds_profile_for_every_node(tmp_path):
    launch = _launch_dir(
        tmp_path,
        'env:\n  ROS_STATIC_PEERS: "10.0.0.10;10.0.0.11"\n'
        '  FASTRTPS_DEFAULT_PROFILES_FILE: "{launch_dir}/config/fastdds_lossy_network.xml"\n  ROS_DOMAIN_ID: 7\n',
    )
    table = load_table("unicast", launch)
    assert dict(table.env) == {
        "ROS_STATIC_PEERS": "10.0.0.10;10.0.0.11",
        "FASTRTPS_DEFAULT_PROFILES_FILE": f"{launch.resolve()}/config/fastdds_lossy_network.xml",
        "ROS_DOMAIN_ID": "7",
    }
    assert table.with_sets(["sim_robot:seed:=3"]).env == table.env  # --set keeps it
    out = subprocess.run([ROBOT_RL, "up", "unicast", "--launch-dir", str(launch), "--dry-run"],
                         capture_output=True, text=True, env=_env(), timeout=60, check=True).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[:3] == [
        "export ROS_STATIC_PEERS='10.0.0.10;10.0.0.11'",
        f"export FASTRTPS_DEFAULT_PROFILES_FILE={launch.resolve()}/config/fastdds_lossy_network.xml",
        "export ROS_DOMAIN_ID=7",
    ]
    assert "robot-rl-sim-node --ros-args" in lines[3]
    out = subprocess.run([ROBOT_RL, "up", "unicast", "--launch-dir", str(launch), "--dry-run", "--static-peers",
                          "192.168.1.5"], capture_output=True, text=True, env=_env(), timeout=60, check=True).stdout  # fmt: skip
    assert out.splitlines()[0] == "export ROS_STATIC_PEERS=192.168.1.5"


def test_a_table_without_env_prints_only_command_lines(tmp_path):
    out = subprocess.run([ROBOT_RL, "up", "unicast", "--launch-dir", str(_launch_dir(tmp_path, "")), "--dry-run"],
                         capture_output=True, text=True, env=_env(), timeout=60, check=True).stdout  # fmt: skip
    assert len(out.splitlines()) == 1 and "export" not in out


@pytest.mark.parametrize(
    "env_block, message",
    [
        ("env: [ROS_STATIC_PEERS]\n", "expected a mapping of variable name to value"),
        ('env:\n  "ROS STATIC": "x"\n', "must be a variable name"),
        ("env:\n  ROS_STATIC_PEERS: [a, b]\n", "must be a variable name"),
    ],
)
def test_a_broken_env_is_refused_naming_the_setup_and_field(tmp_path, env_block, message):
    with pytest.raises(TableError, match=message) as err:
        load_table("unicast", _launch_dir(tmp_path, env_block))
    assert "setup 'unicast', field 'env'" in str(err.value)
