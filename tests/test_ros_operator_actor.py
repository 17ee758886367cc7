"""The scripted operator node corrects the actor node through teleop/command, as a person would.

Sim node, actor node (random warm-up policy) and operator node as real processes over DDS; this test
process acks the episodes. The operator's take-overs show up in the stored episodes as intervened steps
that head for the cube, within the operator's budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from rosprocs import start_process as _start  # noqa: E402
from rosprocs import stop_process as _stop
from test_ros_actor_teleop import _Cell  # noqa: E402

from robot_rl import keys

pytestmark = pytest.mark.ros

NS = f"/operator_actor_{os.getpid()}"
STEPS = 40
BIN = Path(sys.executable).parent


def test_the_operator_nodes_take_overs_are_recorded_by_the_actor_within_the_budget(tmp_path):
    ros = ["--ros-args", "-r", f"__ns:={NS}", "-r", f"/clock:={NS}/clock"]
    logs = {name: tmp_path / f"{name}.log" for name in ("sim", "actor", "operator")}
    probe = _Cell(NS)
    procs = {
        "sim": _start(
            [str(BIN / "robot-rl-sim-node"), *ros, "-p", "camera_rate_hz:=0.0", "-p", "seed:=5"], logs["sim"]
        ),
        "actor": _start(
            [
                str(BIN / "robot-rl-actor-node"),
                *ros,
                "-r",
                "__node:=actor",
                "-p",
                "use_sim_time:=true",
                "-p",
                "warmup:=random",
                "-p",
                f"max_episode_steps:={STEPS}",
                "-p",
                f"store:={tmp_path / 'store'}",
                "-p",
                "teleop_timeout_s:=1.0",
            ],
            logs["actor"],
        ),
        "operator": _start(
            [
                str(BIN / "robot-rl-operator-node"),
                *ros,
                "-p",
                "use_sim_time:=true",
                "-p",
                "patience_steps:=5",
                "-p",
                "takeover_steps:=8",
                "-p",
                "max_interventions:=2",
                "-p",
                "max_fraction:=0.5",
                "-p",
                f"max_episode_steps:={STEPS}",
            ],
            logs["operator"],
        ),
    }
    try:
        episode = probe.first_episode(lambda e: e[keys.IS_INTERVENTION].any(), within=6)
        flags = episode[keys.IS_INTERVENTION]
        assert 0 < flags.sum() <= STEPS // 2  # the budget: max_fraction of the episode
        driven = episode[keys.ACTION][flags, :3]
        to_cube = -episode[keys.STATE][: len(flags)][flags, 25:28]  # cube_to_tcp: state dims 25..27 (18 proprio + 7)
        heading = np.sum(driven * to_cube, axis=1) / (
            np.linalg.norm(driven, axis=1) * np.linalg.norm(to_cube, axis=1) + 1e-9
        )
        assert np.median(heading) > 0.5, f"the operator should head for the cube; cosines {np.round(heading, 2)}"
        assert (
            np.abs(episode[keys.POLICY_ACTION][flags] - episode[keys.ACTION][flags]).max() > 0.1
        )  # random proposals kept
    finally:
        probe.close()
        codes = {name: _stop(proc) for name, proc in procs.items()}
    assert all(code == 0 for code in codes.values()), {n: logs[n].read_text()[-1500:] for n in logs}
