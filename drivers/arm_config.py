"""The arm node's parameters: `ArmNodeConfig`, the adapter's `<adapter>.<field>` parameters, the workspace box,
and the `--help` text that lists them all (what `robot-rl-arm-node --help` prints)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from robot_rl.cell import task_spec
from robot_rl.interfaces import WorkspaceBox
from robot_rl.ros import topics
from robot_rl_drivers.adapters import ADAPTERS, adapter_class

AUTOSTART = ("unconfigured", "inactive", "active")
CELL_BOX = task_spec("pick_cube").workspace  # default box: the simulated cell's arm box (robot_rl.cell)


@dataclass(frozen=True)
class ArmNodeConfig:
    """ROS parameters of the arm node (the adapter's own are `<adapter>.<field>`, see each adapter's config)."""

    adapter: str = "sim"  # sim | franka | ur | ros2_control
    autostart: str = "active"  # lifecycle state to reach at start: unconfigured | inactive | active
    control_rate_hz: float = 50.0  # state published and commands applied at this rate (node clock)
    watchdog_timeout_s: float = 0.5  # hold the arm when no valid ee_command/ee_target arrived for this long
    workspace_low_m: tuple[float, float, float] = CELL_BOX.low_m  # tool target box, base frame, lower corner
    workspace_high_m: tuple[float, float, float] = CELL_BOX.high_m  # upper corner
    workspace_file: str = ""  # workspace YAML from `robot-rl calibrate workspace`; replaces the two corners above
    max_step_m: float = 0.03  # safety filter: largest translation per control period
    max_step_rad: float = 0.15  # safety filter: largest rotation per control period
    max_speed_m_s: float = 0.30  # safety filter: translation speed limit
    max_angvel_rad_s: float = 1.5  # safety filter: rotation speed limit
    max_accel_m_s2: float = 3.0  # safety filter: limit on the change of commanded velocity
    max_target_lead_m: float = 0.06  # the tool target stays this close to the measured tool (no wind-up when blocked)
    home_timeout_s: float = 8.0  # `reset` by streamed targets (adapters without a home move) fails after this long
    home_tolerance_m: float = 0.01  # ... and succeeds when the measured tool is this close to the home position
    home_tolerance_rad: float = 0.05  # ... and this close to the home orientation
    status_rate_hz: float = 1.0  # arm_status heartbeat (it is also sent on every change)
    control_priority: int = 60  # SCHED_FIFO priority (1..99) of the thread running each control period, while it
    # runs one, where permitted (robot_rl.acting.realtime.TickPriority); above the actor's 50: the arm's command path,
    # watchdog and state outrank the policy's inference, as a robot's controller does. 0: as started
    wake_lead_ms: float = 5.0  # that thread takes the priority this long before each period is due, so a loaded
    # machine wakes it on time (robot_rl.acting.wake); 0 = only while the period runs
    cpu_latency_us: int = 0  # /dev/cpu_dma_latency held at this many us while the node runs, where permitted: no deep
    # CPU idle states between periods (robot_rl.acting.cpu_latency); negative = as the system sets them
    base_frame: str = topics.BASE_FRAME  # frame_id of poses, twists and accepted commands

    def validate(self) -> None:
        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter {self.adapter!r} is unknown; choose one of {sorted(ADAPTERS)}")
        if self.autostart not in AUTOSTART:
            raise ValueError(f"autostart {self.autostart!r} is unknown; choose one of {list(AUTOSTART)}")
        for name in (
            "control_rate_hz",
            "watchdog_timeout_s",
            "max_target_lead_m",
            "status_rate_hz",
            "home_timeout_s",
            "home_tolerance_m",
            "home_tolerance_rad",
        ):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not 0 <= self.control_priority <= 99:
            raise ValueError(
                f"control_priority must be 0 (off) or a SCHED_FIFO priority 1..99, got {self.control_priority}"
            )
        if not (math.isfinite(self.wake_lead_ms) and self.wake_lead_ms >= 0):
            raise ValueError(f"wake_lead_ms must be 0 (off) or a positive number of ms, got {self.wake_lead_ms}")


def declare_prefixed(node: Node, prefix: str, default: Any) -> Any:
    """Declare every field of the dataclass `default` as parameter `<prefix>.<field>`; the config with its values."""
    values = {}
    for f in dataclasses.fields(default):
        base, name = getattr(default, f.name), f"{prefix}.{f.name}"
        if node.has_parameter(name):  # declared already (a preset selector)
            values[f.name] = node.get_parameter(name).value
            continue
        # an empty list has no element type for ROS to infer: let the params file give it one
        descriptor = ParameterDescriptor(dynamic_typing=isinstance(base, tuple) and not base)
        value = node.declare_parameter(name, list(base) if isinstance(base, tuple) else base, descriptor).value
        if value is None:  # an empty list in a params file has no type either: ROS leaves it unset
            value = base
        elif isinstance(base, tuple):
            value = tuple(value)
        elif isinstance(base, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return dataclasses.replace(default, **values)


def declare_adapter(node: Node, cfg: ArmNodeConfig) -> tuple[type, Any]:
    """(adapter class, its config) for `cfg.adapter`, its fields declared as `<adapter>.<field>` and validated."""
    cls = adapter_class(cfg.adapter)
    default = cls.config_class()
    with_preset = getattr(cls, "with_preset", None)  # defaults from a preset file (ros2_control)
    if with_preset is not None:
        default = with_preset(node.declare_parameter(f"{cfg.adapter}.preset", default.preset).value)
    adapter_cfg = declare_prefixed(node, cfg.adapter, default)
    if hasattr(adapter_cfg, "validate"):
        adapter_cfg.validate()
    return cls, adapter_cfg


def workspace_box(cfg: ArmNodeConfig) -> WorkspaceBox:
    """The calibrated box of cfg.workspace_file, else the configured corners."""
    if cfg.workspace_file:
        from robot_rl_calibration.io import load_workspace

        return load_workspace(cfg.workspace_file)
    return WorkspaceBox(tuple(cfg.workspace_low_m), tuple(cfg.workspace_high_m))


def help_text(doc: str) -> str:
    """The node's docstring `doc`, then every parameter with its default and comment (the node's, then each adapter's)."""

    def fields_of(cls: type, prefix: str) -> list[str]:
        """`  <prefix><field>: <type> = <default>  # <comment>`, the default's value and the comment of its source line."""
        comments = {}
        for line in inspect.getsource(cls).splitlines():
            name, sep, rest = line.strip().partition(": ")
            if line.startswith("    ") and not line.startswith("     ") and sep and " = " in rest:
                comments[name] = rest.partition("  # ")[2]
        out = []
        for f in dataclasses.fields(cls):
            type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            comment = f"  # {comments[f.name]}" if comments.get(f.name) else ""
            out.append(f"  {prefix}{f.name}: {type_name} = {f.default!r}{comment}")
        return out

    usage = (
        "usage: robot-rl-arm-node --ros-args [-r __ns:=/robot_1] [--params-file FILE] "
        "[-p adapter:=sim|franka|ur|ros2_control] [-p <adapter>.<field>:=VALUE]"
    )
    out = [doc.strip().split("\n\n")[0], usage, doc.strip().split("\n\n", 1)[1], "parameters:"]
    out += fields_of(ArmNodeConfig, "")
    for name in sorted(ADAPTERS):
        try:
            out += [f"parameters of adapter {name!r} (ROS parameters {name}.<field>):"]
            out += fields_of(adapter_class(name).config_class, f"{name}.")
        except ImportError as err:  # the sim adapter without the sim extra
            out += [f"  (not available here: {err})"]
    return "\n\n".join(out[:4]) + "\n" + "\n".join(out[4:])
