"""The actor's inbox for weights from /learner/policy: keep the newest message, decode it when the tick allows.

The subscription callback only stores the message (no decoding on receipt), and the actor takes it right
after a tick has sent its command, so a payload never delays a command. Decoding checks everything before
it allocates (`robot_rl.wire`, `Policy.from_bytes`): wrapper and inner checksums, header bounds, config
sizes, tensor names/shapes/dtypes against the network the config builds, finite weights. Weights with the
config in use are copied into that policy (no model construction: ~5x cheaper); others build a new Policy.
Whatever is wrong raises (PolicyPayloadError / WireError, both ValueErrors); the actor refuses and counts it.
"""

from __future__ import annotations

from std_msgs.msg import UInt8MultiArray

from robot_rl.agents.policy import Policy, checked_weights, payload_config
from robot_rl.agents.residual import policy_from_bytes
from robot_rl.nodes import protocol


class PolicyInbox:
    """The newest policy message not yet in use (a newer one replaces it unread)."""

    def __init__(self) -> None:
        self._msg: UInt8MultiArray | None = None

    def offer(self, msg: UInt8MultiArray) -> None:
        self._msg = msg

    def take(self, current: Policy | None, current_config: dict | None) -> tuple[Policy, int] | None:
        """(policy, version) from the waiting message, or None if none waits; raises ValueError on a bad payload.

        With the config in use, the weights are copied into `current` (checked first, so a refused payload
        leaves it untouched) and `current` is returned.
        """
        msg, self._msg = self._msg, None
        if msg is None:
            return None
        blob, version = protocol.policy_from_msg(msg)
        if current is not None and payload_config(blob) == current_config:
            current.load_state_dict(checked_weights(blob, current.state_dict()))
            return current, version
        return policy_from_bytes(blob), version
