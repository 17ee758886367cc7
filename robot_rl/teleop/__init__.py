"""A person in the loop, without ROS: device mappings, readers, the intervention arbiter, the scripted operator.

mapping.py   device mapping files (YAML, one per device; defaults in mappings/): axes, buttons, scales, deadbands
joy.py       JoyMapper: a gamepad's or SpaceMouse's axes and buttons -> TeleopCommand, events, disconnects
keyboard.py  a terminal keyboard (raw termios, non-blocking, works over SSH) -> TeleopCommand
spacemouse.py  a SpaceMouse read directly over HID (pyspacemouse, imported only when used)
arbiter.py   Arbiter: policy action + TeleopCommand -> executed action, is_intervention, human action, verdict
operator.py  ScriptedOperator: takes over from ground truth when the policy strays, within a budget
state_experts.py  experts acting from the task's object state alone (the operator node's; the sim's read MuJoCo)
link.py      TeleopLink: the receiving end of `teleop/command` (event counters, heartbeat timeout)

The ROS nodes around these live in robot_rl/nodes/ (teleop, keyboard, spacemouse, operator).
"""

from robot_rl.teleop.arbiter import Arbiter, ArbiterConfig, Arbitration
from robot_rl.teleop.joy import JoyMapper
from robot_rl.teleop.mapping import JoyMapping, KeyboardMapping, MappingError, load_mapping
from robot_rl.teleop.operator import OperatorConfig, ScriptedOperator, distance_to_done_m

__all__ = [
    "Arbiter",
    "ArbiterConfig",
    "Arbitration",
    "JoyMapper",
    "JoyMapping",
    "KeyboardMapping",
    "MappingError",
    "OperatorConfig",
    "ScriptedOperator",
    "load_mapping",
    "distance_to_done_m",
]
