"""`ros2 launch robot_rl robot_rl.launch.py setup:=sim_two_robots use_sim:=true`

Thin on purpose: which executables run, with which names, namespaces, parameter files and remaps, comes
from the node table `setups/<setup>.yaml` next to this file, through the same loader (`robot_rl.nodes.table`)
that `robot-rl up` uses, so both start the same command lines (`NodeEntry.ros_args()`).
Nodes are started as processes by their console-script name (pip puts those in <prefix>/bin, not in the
lib/<package> directory `launch_ros.actions.Node` searches).
"""

import shutil
from pathlib import Path

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription
from robot_rl.nodes.table import available_setups, load_table

LAUNCH_DIR = Path(__file__).resolve().parent  # share/robot_rl/launch when installed, launch/ in the source tree


def _start_nodes(context):
    setup = LaunchConfiguration("setup").perform(context)
    use_sim = LaunchConfiguration("use_sim").perform(context) == "true"
    table = load_table(setup, LAUNCH_DIR, executables=())
    classifier = LaunchConfiguration("classifier").perform(context)
    if classifier:  # as `robot-rl up SETUP --set reward:classifier:=DIR`
        table = table.with_sets([f"reward:classifier:={classifier}"])
    priority = LaunchConfiguration("control_priority").perform(context)
    if priority:  # as `robot-rl up SETUP --set actor:control_priority:=N`, for every actor of the setup
        actors = [n.fqn for n in table.nodes if n.executable == "robot-rl-actor-node"]
        table = table.with_sets([f"{fqn}:control_priority:={priority}" for fqn in actors])
    return [
        ExecuteProcess(
            cmd=[shutil.which(node.executable) or node.executable, *node.ros_args()],
            name=node.fqn.lstrip("/").replace("/", "."),
            additional_env=dict(table.env),  # the table's env: (unicast) discovery, DDS profile
            output="screen",
        )
        for node in table.select(use_sim)
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "setup",
                default_value="sim_single",
                choices=list(available_setups(LAUNCH_DIR)),
                description="node table to run: launch/setups/<setup>.yaml",
            ),
            DeclareLaunchArgument(
                "use_sim",
                default_value="true",
                choices=["true", "false"],
                description="true: the MuJoCo twin (nodes with mode sim or any); false: hardware (mode real or any)",
            ),
            DeclareLaunchArgument(
                "classifier",
                default_value="",
                description="reward classifier directory (`robot-rl reward train --out`) for the "
                "setup's reward nodes; empty: the table's",
            ),
            DeclareLaunchArgument(
                "control_priority",
                default_value="",
                description="SCHED_FIFO priority 1..99 of each actor's control thread where permitted (else nice "
                "-10), 0 = off; empty: the table's (50). See docs/hardware.md, real-time priority",
            ),
            OpaqueFunction(function=_start_nodes),
        ]
    )
