"""The arm node's faults, e-stop, `recover` service and `arm_status` topic (a mixin of `ArmNode`, arm_node.py).

A fault (the adapter reports one, its state cannot be read or is unusable) and the e-stop both latch: the node
holds until `recover` succeeds, which needs the stop released and the arm reporting a usable state. `arm_status`
(reliable, transient local) is republished on every change of what it says, not of its counters.
"""

from __future__ import annotations

import json

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from robot_rl_drivers.adapters import AdapterError

ESTOP = "estop"
RECOVER = "recover"
ARM_STATUS = "arm_status"
# estop: reliable, volatile (matches any reliable publisher, `ros2 topic pub` included); the latch is ours.
ESTOP_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
STATUS_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def fault_kind(message: str) -> str:
    """What a fault message is about, without its details ("driver silent: nothing on /x for 0.61 s" -> "driver
    silent"): a new kind is a transition worth a log line, a new elapsed time is not."""
    return message.split(":", 1)[0]


class ArmFaults:
    """Fault latch, e-stop, `recover` and `arm_status` of `ArmNode` (uses its adapter, robot, cfg and publishers)."""

    def _set_fault(self, message: str) -> None:
        """Latch a fault (the message kept current); at a transition (none before, or another kind) log it once,
        end a home move and hold."""
        new = not self.fault or fault_kind(self.fault) != fault_kind(message)
        self.fault, self._fault_gone = message, False
        if new:
            self.get_logger().error(f"arm fault, holding until `{RECOVER}` succeeds: {message}")
            self._end_homing(False, f"interrupted by an arm fault: {message}")
            self._hold("fault")

    def status(self) -> dict:
        lifecycle = self._state_machine.current_state[1]
        return {
            "lifecycle": lifecycle,
            "adapter": self.cfg.adapter,
            "connected": self.robot is not None,
            "holding": bool(self.hold_reason),
            "hold_reason": self.hold_reason,
            "estop": self.estop_latched,
            "estop_pressed": self.estop_pressed,
            "fault": self.fault,
            "commands_applied": self.counts["applied"],
            "commands_dropped": self.counts["dropped"],
            "commands_rejected": self.counts["rejected"],
            "commands_clipped": self.counts["clipped"],
            "refused": self.refusals.as_dict(),
            "reset": self.reset_state,
        }

    def publish_status(self, force: bool = False) -> None:
        """arm_status on change (counters of applied/clipped commands alone do not count as a change) or when forced."""
        status = self.status()
        key = json.dumps(
            {
                k: fault_kind(v) if k == "fault" else v
                for k, v in status.items()
                if k not in ("commands_applied", "commands_clipped")
            }
        )  # a fault's growing elapsed time: no change
        if force or key != self._last_status:
            self._last_status = key
            self.pub_status.publish(String(data=json.dumps(status)))

    def _on_estop(self, msg: Bool) -> None:
        self.estop_pressed = bool(msg.data)
        if msg.data and not self.estop_latched:
            self.estop_latched = True
            self.get_logger().error(f"EMERGENCY STOP on {ESTOP}: holding; commands ignored until `{RECOVER}` succeeds")
            self._end_homing(False, "interrupted by the emergency stop")
            self._hold("estop")
        self.publish_status()

    def _on_recover(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self._recover()
        if response.success:
            self.get_logger().info(f"recover: {response.message}")
        else:
            self.get_logger().error(f"recover refused: {response.message}")
        self.publish_status()
        return response

    def _recover(self) -> tuple[bool, str]:
        if self.estop_pressed:
            return False, f"{ESTOP} is still true; publish false on {ESTOP} (release the stop) first"
        if self.robot is not None:
            try:
                self.adapter.recover()
            except AdapterError as err:
                return False, f"the arm did not recover: {err}"
            if self.adapter.fault():
                return False, f"the arm still reports a fault: {self.adapter.fault()}"
            try:
                self._valid_state()
            except AdapterError as err:
                return False, f"the arm's state is not usable yet: {err}"
        was = [name for name, on in (("estop", self.estop_latched), ("fault", bool(self.fault))) if on]
        self.estop_latched, self.fault, self._fault_gone = False, "", False
        self._clear_commands()
        self._hold("no command yet" if self.active else self.hold_reason)
        return True, f"recovered from {', '.join(was) or 'nothing'}; holding until a new command arrives"
