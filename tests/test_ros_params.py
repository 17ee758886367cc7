"""declare_config: one ROS parameter per dataclass field, typed like the field."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter

from robot_rl.ros.params import declare_config

pytestmark = pytest.mark.ros


@dataclass(frozen=True)
class _Cfg:
    source: str = "0"  # text that users type as numbers (device index, serial)
    rate_hz: float = 10.0
    cameras: tuple[str, ...] = ("front",)


@pytest.mark.parametrize(
    ("given", "expected"), [(0, "0"), (123622270883, "123622270883"), ("/dev/video2", "/dev/video2")]
)
def test_a_text_field_reads_numbers_from_the_command_line_as_text_and_floats_accept_integers(given, expected):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Node(
            "params_probe",
            context=context,
            parameter_overrides=[
                Parameter("source", value=given),
                Parameter("rate_hz", value=5),
                Parameter("cameras", value=["a", "b"]),
            ],
        )
        cfg = declare_config(node, _Cfg())
        assert cfg == _Cfg(source=expected, rate_hz=5.0, cameras=("a", "b")) and isinstance(cfg.rate_hz, float)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_a_number_field_given_text_is_refused_naming_the_parameter():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Node("params_probe", context=context, parameter_overrides=[Parameter("rate_hz", value="fast")])
        with pytest.raises(ValueError, match="parameter rate_hz must be a number, got 'fast'"):
            declare_config(node, _Cfg())
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
