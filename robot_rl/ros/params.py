"""A typed dataclass config as ROS parameters: one parameter per field, same name, same default.

`declare_config(node, SimNodeConfig())` declares every field on the node (so `--params-file` and
`-p name:=value` set them) and returns the config with the values the node was started with.
Text fields take any value and read it as text: `-p source:=0` or `-p serial:=123622270883` parse as
integers on the command line, and a device index or serial number is text to us. Number fields take
integers too (`-p rate_hz:=5`); anything else is refused naming the parameter.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

C = TypeVar("C")


def _to_ros(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def declare_config(node: Node, default: C) -> C:
    """Declare each field of the dataclass instance `default` as a parameter and read the values back."""
    if not dataclasses.is_dataclass(default):
        raise TypeError(f"declare_config needs a dataclass instance, got {type(default).__name__}")
    values = {}
    for f in dataclasses.fields(default):
        base = getattr(default, f.name)
        if isinstance(base, str):
            value = node.declare_parameter(f.name, base, ParameterDescriptor(dynamic_typing=True)).value
            value = "" if value is None else str(value)
        elif isinstance(base, float):  # -p rate_hz:=5 parses as an integer: accept it
            value = node.declare_parameter(f.name, base, ParameterDescriptor(dynamic_typing=True)).value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"parameter {f.name} must be a number, got {value!r}")
            value = float(value)
        else:
            value = node.declare_parameter(f.name, _to_ros(base)).value
        if isinstance(base, tuple):
            value = tuple(value)
        values[f.name] = value
    return dataclasses.replace(default, **values)
