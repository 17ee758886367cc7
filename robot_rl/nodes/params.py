"""A typed dataclass config as ROS parameters: one parameter per field, same name, same default.

`declare_config(node, SimNodeConfig())` declares every field on the node (so `--params-file` and
`-p name:=value` set them) and returns the config with the values the node was started with.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

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
        value = node.declare_parameter(f.name, _to_ros(base)).value
        if isinstance(base, tuple):
            value = tuple(value)
        elif isinstance(base, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return dataclasses.replace(default, **values)
