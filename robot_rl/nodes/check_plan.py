"""What `robot-rl check SETUP` expects of a running cell, and the verdict on what it measured; no ROS here.

The plan comes from the setup's node table (`robot_rl.nodes.table`): every arm node (`robot-rl-arm-node`, or
the simulated robot `robot-rl-sim-node`, which is the arm node over the MuJoCo cell) is one robot, named by its
namespace; the camera nodes and the actor of that namespace belong to it. A parameter's expected value is the
table's (its params files, then its overrides and `--set`), else the running node's own (its default), so a cell
started with other values than its table says (a camera at rate 0) fails the check. Limits and e-stop wiring are
read from the running node: what runs is what must be safe.

Each verdict is one line `PASS|FAIL|WARN <robot> <check>: <measured> (<expected>)`; WARN does not fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import yaml

from robot_rl.nodes.table import NodeEntry, NodeTable

ARM_EXECUTABLES = ("robot-rl-arm-node", "robot-rl-sim-node")
SIM_EXECUTABLE = "robot-rl-sim-node"
CAMERA_EXECUTABLE = "robot-rl-camera-node"
ACTOR_EXECUTABLE = "robot-rl-actor-node"
MIN_RATE_FRACTION = 0.8  # a topic passes at >= 80 % of its expected rate (stamps' clock)
DEFAULT_MAX_STALENESS_S = 0.3  # the actor's max_staleness_s default: older input pauses its episodes
MAX_WATCHDOG_S = 1.0  # at the 0.3 m/s speed limit, a lost command stream may carry the tool 0.3 m before it holds
HOLD_LIMIT_M = 0.002  # the dry hold test: the tool moves less than this over HOLD_DURATION_S of zero commands
HOLD_DURATION_S = 1.0
# Parameters read from the running arm node (the box: the sim robot's is its task's; the arm node's the corners or
# file), and the sim robot's own. One request names only declared parameters: ROS answers none if one is not.
ARM_PARAMS = (
    "control_rate_hz",
    "watchdog_timeout_s",
    "base_frame",
    "workspace_low_m",
    "workspace_high_m",
    "workspace_file",
)
SIM_PARAMS = ("task", "cameras", "camera_rate_hz", "publish_clock")
ACTOR_PARAMS = (
    "task",
    "obs_mode",
    "cameras",
    "joint_names",
    "success_from",
    "image_size",
    "use_rotation",
    "control_rate_hz",
    "max_staleness_s",
    "max_episode_steps",
)
STATUS = ("PASS", "WARN", "FAIL")


@dataclass(frozen=True)
class Verdict:
    """One line of the report."""

    status: str  # PASS | WARN | FAIL
    robot: str  # the robot's namespace, "/" for the root
    check: str  # what was checked, e.g. "joint_states" or "workspace"
    measured: str
    expected: str

    def line(self) -> str:
        return f"{self.status} {self.robot} {self.check}: {self.measured} ({self.expected})"

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "robot": self.robot,
            "check": self.check,
            "measured": self.measured,
            "expected": self.expected,
        }


def table_params(entry: NodeEntry) -> dict:
    """The parameters the table gives one node: its params files (`/**`, then its name or full name), then its
    overrides (values from `--set` are text, read as YAML the way ROS reads `-p name:=value`)."""
    params: dict = {}
    for path in entry.parameters:
        doc = yaml.safe_load(path.read_text()) or {}
        for key in ("/**", entry.name, entry.fqn, entry.fqn.lstrip("/")):
            params.update((doc.get(key) or {}).get("ros__parameters") or {})
    for key, value in entry.overrides:
        params[key] = _yaml_value(value) if isinstance(value, str) else value
    return params


def _yaml_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:  # not YAML: ROS takes it as text too
        return text


@dataclass
class RobotPlan:
    """One robot of the setup: its arm node, the camera nodes and actor in its namespace."""

    arm: NodeEntry
    arm_table: dict  # table-given parameters of the arm node
    camera_nodes: dict[str, dict] = field(default_factory=dict)  # camera name -> table parameters of its node
    actor: NodeEntry | None = None
    actor_table: dict = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.arm.namespace

    @property
    def label(self) -> str:
        return self.arm.namespace or "/"

    def topic(self, relative: str) -> str:
        return f"{self.namespace}/{relative}"

    @property
    def is_sim(self) -> bool:
        return self.arm.executable == SIM_EXECUTABLE

    def clock_topic(self) -> str | None:
        """The sim robot's clock (after the table's remaps): stamps and staleness are on it. None on wall time."""
        if not self.is_sim or self.arm_table.get("publish_clock", True) is False:
            return None
        return dict(self.arm.remaps).get("/clock", "/clock")

    def expected(self, name: str, live: dict, default=None):
        """The arm node's parameter as the table gives it, else as the running node reports it, else `default`."""
        return self.arm_table.get(name, live.get(name, default))

    def cameras(self, arm_live: dict) -> dict[str, tuple[float, str]]:
        """camera -> (expected rate Hz, expected frame_id) of every camera this robot's table publishes; plus the
        actor's cameras in pixels mode that no node of the table publishes (at the actor's control rate)."""
        out: dict[str, tuple[float, str]] = {}
        if self.is_sim and float(self.expected("camera_rate_hz", arm_live, 0.0)) > 0:
            for cam in self.expected("cameras", arm_live, ()):
                out[cam] = (float(self.expected("camera_rate_hz", arm_live)), f"{cam}_optical_frame")
        for cam, params in self.camera_nodes.items():
            out[cam] = (float(params.get("rate_hz", 10.0)), params.get("frame_id") or f"{cam}_optical_frame")
        if self.actor is not None and self.actor_table.get("obs_mode", "state") == "pixels":
            for cam in self.actor_table.get("cameras", ("front", "wrist")):
                out.setdefault(cam, (float(self.actor_table.get("control_rate_hz", 10.0)), ""))
        return out


def plan_robots(table: NodeTable, use_sim: bool) -> list[RobotPlan]:
    """One RobotPlan per arm node of the table's nodes for this mode, in table order."""
    nodes = table.select(use_sim)
    robots = {n.namespace: RobotPlan(n, table_params(n)) for n in nodes if n.executable in ARM_EXECUTABLES}
    for node in nodes:
        robot = robots.get(node.namespace)
        if robot is None:
            continue
        if node.executable == CAMERA_EXECUTABLE:
            params = table_params(node)
            robot.camera_nodes[str(params.get("camera", "front"))] = params
        elif node.executable == ACTOR_EXECUTABLE:
            robot.actor, robot.actor_table = node, table_params(node)
    return list(robots.values())


# --- verdicts on measurements --------------------------------------------------------------------
def topic_verdict(
    robot: str,
    topic: str,
    stamps_s: list[float],
    now_s: float | None,
    rate_hz: float,
    max_staleness_s: float,
    clock: str,
) -> Verdict:
    """Rate from the messages' stamps (the robot's own clock) and the newest stamp's age at `now_s`."""
    expected = f">= {MIN_RATE_FRACTION * rate_hz:.1f} Hz, age <= {max_staleness_s:.2f} s on {clock}"
    if len(stamps_s) < 2:
        return Verdict("FAIL", robot, topic, f"{len(stamps_s)} message(s)", expected)
    span_s = max(stamps_s) - min(stamps_s)
    rate = (len(stamps_s) - 1) / span_s if span_s > 0 else math.inf
    age_s = (now_s - max(stamps_s)) if now_s is not None else math.nan
    measured = f"{rate:.1f} Hz, age {age_s:.3f} s" if math.isfinite(rate) else "stamps do not advance"
    ok = (
        math.isfinite(rate)
        and rate >= MIN_RATE_FRACTION * rate_hz
        and math.isfinite(age_s)
        and age_s <= max_staleness_s
    )
    return Verdict("PASS" if ok else "FAIL", robot, topic, measured, expected)


def frames_verdict(robot: str, seen: dict[str, set[str]], expected: dict[str, str]) -> Verdict:
    """Each topic's header.frame_id against the configured one ("" = not configured: any non-empty frame)."""
    wrong = []
    for topic, want in expected.items():
        got = seen.get(topic, set())
        if not got:
            continue  # its topic line already fails
        if (want and got != {want}) or (not want and "" in got):
            wrong.append(f"{topic} in {sorted(got)}")
    measured = "; ".join(wrong) if wrong else _by_frame({t: min(seen[t]) for t in expected if seen.get(t)})
    return Verdict(
        "FAIL" if wrong else "PASS",
        robot,
        "frames",
        measured or "no messages",
        _by_frame({t: w or "(any)" for t, w in expected.items()}),
    )


def _by_frame(frames: dict[str, str]) -> str:
    """{topic: frame} as `frame: topic, topic; frame: topic`."""
    groups: dict[str, list[str]] = {}
    for topic, frame in frames.items():
        groups.setdefault(frame, []).append(topic)
    return "; ".join(f"{frame}: {', '.join(names)}" for frame, names in groups.items())


def workspace_verdict(robot: str, tool_m: tuple[float, float, float] | None, low_m, high_m, source: str) -> Verdict:
    """The newest measured tool position inside the arm node's box (what the safety filter clips targets to)."""
    if low_m is None or high_m is None or len(low_m) != 3 or len(high_m) != 3:
        return Verdict("FAIL", robot, "workspace", f"no box ({source} not readable)", "the arm node's workspace box")
    expected = f"inside {source} box {_vec(low_m)} .. {_vec(high_m)}"
    if tool_m is None:
        return Verdict("FAIL", robot, "workspace", "no tool pose", expected)
    outside = [f"{'xyz'[i]} {tool_m[i]:.3f}" for i in range(3) if not low_m[i] <= tool_m[i] <= high_m[i]]
    measured = f"tool at {_vec(tool_m)}" + (f", outside in {', '.join(outside)}" if outside else "")
    return Verdict("FAIL" if outside else "PASS", robot, "workspace", measured, expected)


def watchdog_verdict(robot: str, timeout_s) -> Verdict:
    expected = f"set, finite, 0 < watchdog_timeout_s <= {MAX_WATCHDOG_S} s"
    if timeout_s is None:
        return Verdict("FAIL", robot, "watchdog", "parameter watchdog_timeout_s not found", expected)
    ok = isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and 0 < timeout_s <= MAX_WATCHDOG_S
    return Verdict("PASS" if ok else "FAIL", robot, "watchdog", f"watchdog_timeout_s {timeout_s}", expected)


def estop_verdict(robot: str, arm_fqn: str, subscribers: list[str], status: dict | None) -> Verdict:
    """The arm node subscribes to `estop`, and its arm_status shows no latched stop or fault."""
    expected = f"{arm_fqn} subscribes to estop; no estop latched, no fault"
    problems = [] if arm_fqn in subscribers else [f"estop subscribers {subscribers or 'none'}"]
    if status is None:
        problems.append("no arm_status")
    else:
        if status.get("estop"):
            problems.append("estop latched")
        if status.get("fault"):
            problems.append(f"fault {status['fault']!r}")
    measured = "; ".join(problems) or f"subscribed by {arm_fqn}; lifecycle {status.get('lifecycle')}"
    return Verdict("FAIL" if problems else "PASS", robot, "estop", measured, expected)


def camera_info_verdict(robot: str, camera: str, k: list[float] | None) -> Verdict:
    expected = "camera_info with fx, fy > 0"
    if k is None:
        return Verdict("FAIL", robot, f"{camera}/camera_info", "no camera_info", expected)
    ok = len(k) == 9 and all(math.isfinite(x) for x in k) and k[0] > 0 and k[4] > 0
    return Verdict("PASS" if ok else "FAIL", robot, f"{camera}/camera_info", f"fx {k[0]:.1f}, fy {k[4]:.1f}", expected)


def hold_verdict(robot: str, moved_m: float | None, applied: int, hold_reason: str) -> Verdict:
    """Zero-motion commands for HOLD_DURATION_S: the arm took them (not holding) and the tool stayed put."""
    expected = f"commands applied, tool moves < {HOLD_LIMIT_M * 1000:.0f} mm over {HOLD_DURATION_S:.0f} s"
    if moved_m is None:
        return Verdict("FAIL", robot, "hold test", "no tool pose during the test", expected)
    measured = f"moved {moved_m * 1000:.2f} mm, {applied} commands applied"
    if applied <= 0:
        return Verdict("FAIL", robot, "hold test", f"{measured}; the arm held ({hold_reason or 'unknown'})", expected)
    return Verdict("PASS" if moved_m < HOLD_LIMIT_M else "FAIL", robot, "hold test", measured, expected)


def exit_code(verdicts: list[Verdict]) -> int:
    return 1 if any(v.status == "FAIL" for v in verdicts) else 0


def _vec(values) -> str:
    return "[" + ", ".join(f"{float(v):.3f}" for v in values) + "]"


def layout_verdict(
    robot: str, actor_params: dict, joint_names: tuple[str, ...], policy: tuple[dict, int] | None
) -> Verdict:
    """The actor's layout (`robot_rl.cell`) against what the robot publishes (its joints in joint_states)
    and, given `policy` = (obs spec, action dim), against the policy's."""
    import dataclasses

    from robot_rl.acting.config import ActorConfig

    names = {f.name for f in dataclasses.fields(ActorConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in actor_params.items() if k in names}
    expected = "the actor's joints in joint_states" + (
        "; the policy's obs spec and action dim = the actor's" if policy else ""
    )
    try:
        layout = ActorConfig(**values).layout()
    except (TypeError, ValueError) as err:
        return Verdict("FAIL", robot, "layout", f"the actor's parameters give no layout: {err}", expected)
    problems = []
    missing = [j for j in layout.joint_names if j not in joint_names]
    if missing:
        problems.append(f"joint_states lacks {missing} (it has {list(joint_names)})")
    if policy is not None and (why := layout.policy_mismatch(*policy)):
        problems.append(f"policy: {why}")
    measured = "; ".join(problems) or (
        f"obs {layout.obs_spec()}, action {layout.action_layout}" + (", the policy's match" if policy else "")
    )
    return Verdict("FAIL" if problems else "PASS", robot, "layout", measured, expected)
