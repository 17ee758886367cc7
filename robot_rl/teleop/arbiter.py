"""The intervention arbiter: who acts this step, the policy or the person, and what the episode's verdict is.

    arbiter = Arbiter(ArbiterConfig(use_rotation=False), action_dim=4)
    arbiter.reset()                                                   # at every episode start
    out = arbiter.step(policy_action, teleop.read(), ee_quat_wxyz)   # every control step
    send(out.action); recorder.step(out.action, ..., policy_action=policy_action,
                                    is_intervention=out.is_intervention)
    if out.verdict: end the episode (success / failure) or discard it (rerecord)

Rules (pure logic, no clock: the teleop reader decides `connected` from its heartbeat):

- Engaged and connected: the person's action replaces the policy's. Twist (6,) normalised in the
  base frame -> action `[dx, dy, dz, (drx, dry, drz,) gripper]` times `translation_scale` /
  `rotation_scale`, expressed in the policy's action frame (`policy_frame`: "base", or "ee" = the
  tool frame at `ee_quat_wxyz`, rotated by R_base_ee^T, so a pure translation stays a pure
  translation). If a component then exceeds 1 the whole motion is shrunk, keeping its direction.
  The gripper is the person's latched closing; without one it keeps the last executed gripper
  (taking over never drops an object). Recorded: is_intervention True, human_action = that action.
- Not engaged (or no teleop at all: `cmd=None`, or a device never seen): the policy acts.
- Disconnected while the person was acting: the intervention ends and the arm HOLDS (zero motion,
  gripper kept) -- the policy does not resume on its own. It stays held, also after the device
  comes back, until the person engages again (they act, then releasing hands control back to the
  policy as usual) or the episode ends (`reset`). Held steps are not interventions (nobody chose
  that action); they are marked `held`. With `hold_on_idle_disconnect` the arm also holds when a
  device that was connected drops while the policy acts.
- Events: `rerecord` -> verdict "rerecord" (discard the episode, do not learn from it), else
  `failure` -> "failure", else `success` -> "success" (terminate with that label). A verdict holds
  the arm for that step; after it the arbiter holds until `reset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.interfaces import TeleopCommand

POLICY_FRAMES = ("base", "ee")
VERDICTS = ("rerecord", "failure", "success")  # in order of precedence when several fire in one step


@dataclass(frozen=True)
class ArbiterConfig:
    """How teleop commands become actions."""

    use_rotation: bool = False  # actions carry (drx, dry, drz) (ActorLayout.use_rotation)
    policy_frame: str = "base"  # frame of the policy's motion actions: "base" (robot base) or "ee" (tool frame)
    translation_scale: float = 1.0  # full stick -> this fraction of a full translation action
    rotation_scale: float = 1.0  # full twist -> this fraction of a full rotation action
    hold_on_idle_disconnect: bool = False  # also hold when a connected device drops while the policy acts

    def __post_init__(self) -> None:
        if self.policy_frame not in POLICY_FRAMES:
            raise ValueError(f"policy_frame={self.policy_frame!r}; choose one of {POLICY_FRAMES}")
        if not (0 < self.translation_scale <= 1 and 0 < self.rotation_scale <= 1):
            raise ValueError(
                f"translation_scale and rotation_scale must be in (0, 1], got "
                f"{self.translation_scale}, {self.rotation_scale}"
            )


@dataclass
class Arbitration:
    """The outcome of one step."""

    action: np.ndarray  # (A,) float32 to execute, in the policy's action frame
    is_intervention: bool  # the person's action replaced the policy's
    human_action: np.ndarray | None  # (A,) float32 the person's action (policy frame); None when they did not act
    held: bool = False  # the arbiter held the arm (device lost mid-intervention, or after a verdict)
    verdict: str | None = None  # "success" | "failure" | "rerecord" | None


def verdict_of(cmd: TeleopCommand | None) -> str | None:
    """The verdict the command's events give (rerecord over failure over success), or None."""
    events = set(cmd.events) if cmd is not None else set()
    return next((v for v in VERDICTS if v in events), None)


def rotation_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """(3, 3) R_base_ee of a (normalised here) quaternion w, x, y, z."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def action_to_base(action: np.ndarray, ee_quat_wxyz: np.ndarray, use_rotation: bool) -> np.ndarray:
    """An action in the tool frame -> the same action in the base frame (motion rotated by R_base_ee)."""
    a = np.array(action, dtype=np.float64)
    R = rotation_matrix(ee_quat_wxyz)
    a[:3] = R @ a[:3]
    if use_rotation:
        a[3:6] = R @ a[3:6]
    return a.astype(np.float32)


class Arbiter:
    """Per-episode state: the last executed gripper and whether a lost device left the arm held."""

    def __init__(self, cfg: ArbiterConfig, action_dim: int):
        want = 7 if cfg.use_rotation else 4
        if action_dim != want:
            raise ValueError(
                f"action_dim={action_dim} but use_rotation={cfg.use_rotation} needs {want}: "
                f"[dx, dy, dz{', drx, dry, drz' if cfg.use_rotation else ''}, gripper]"
            )
        self.cfg, self.action_dim = cfg, action_dim
        self.reset()

    def reset(self) -> None:
        """A new episode: nothing held, no gripper memory, no verdict."""
        self._last_gripper: float | None = None  # last executed gripper action in [-1, 1]
        self._human_acting = False  # the person acted on the previous step
        self._locked = False  # a device dropped mid-intervention: hold until the person re-engages
        self._ended = False  # a verdict was given: hold until reset
        self._seen_connected = False

    def human_action(self, cmd: TeleopCommand, ee_quat_wxyz: np.ndarray | None, fallback_gripper: float) -> np.ndarray:
        """(A,) the person's command as an action in the policy's frame."""
        twist = np.asarray(cmd.twist, dtype=np.float64).reshape(6)
        lin = twist[:3] * self.cfg.translation_scale
        ang = twist[3:6] * self.cfg.rotation_scale
        if self.cfg.policy_frame == "ee":
            if ee_quat_wxyz is None:
                raise ValueError("policy_frame='ee' needs the tool orientation ee_quat_wxyz (w, x, y, z) every step")
            R_T = rotation_matrix(ee_quat_wxyz).T  # base -> tool
            lin, ang = R_T @ lin, R_T @ ang
        motion = np.concatenate([lin, ang]) if self.cfg.use_rotation else lin
        peak = float(np.max(np.abs(motion), initial=0.0))
        if peak > 1.0:
            motion = motion / peak  # shrink, keeping the direction
        gripper = fallback_gripper if cmd.gripper is None else 2.0 * float(np.clip(cmd.gripper, 0.0, 1.0)) - 1.0
        return np.concatenate([motion, [gripper]]).astype(np.float32)

    def _hold(self, policy_gripper: float, verdict: str | None = None) -> Arbitration:
        gripper = policy_gripper if self._last_gripper is None else self._last_gripper
        action = np.zeros(self.action_dim, dtype=np.float32)
        action[-1] = gripper
        self._last_gripper, self._human_acting = gripper, False
        return Arbitration(action, False, None, held=True, verdict=verdict)

    def step(
        self, policy_action: np.ndarray, cmd: TeleopCommand | None, ee_quat_wxyz: np.ndarray | None = None
    ) -> Arbitration:
        """Decide this step. `policy_action` (A,) in the policy's frame; `cmd` the latest teleop command or None."""
        policy = np.asarray(policy_action, dtype=np.float32).reshape(-1)
        if policy.shape != (self.action_dim,):
            raise ValueError(f"policy action has shape {policy.shape}, expected ({self.action_dim},)")
        if self._ended:
            return self._hold(float(policy[-1]))
        verdict = verdict_of(cmd)
        if verdict is not None:
            self._ended = True
            return self._hold(float(policy[-1]), verdict)
        if cmd is not None and cmd.connected:
            self._seen_connected = True
            if cmd.engaged:
                self._locked = False
                fallback = float(policy[-1]) if self._last_gripper is None else self._last_gripper
                human = self.human_action(cmd, ee_quat_wxyz, fallback)
                self._last_gripper, self._human_acting = float(human[-1]), True
                return Arbitration(human.copy(), True, human)
            if self._locked:
                return self._hold(float(policy[-1]))
        elif cmd is not None:  # disconnected
            if self._human_acting or self._locked or (self.cfg.hold_on_idle_disconnect and self._seen_connected):
                self._locked = True
                return self._hold(float(policy[-1]))
        self._last_gripper, self._human_acting = float(policy[-1]), False
        return Arbitration(policy.copy(), False, None)
