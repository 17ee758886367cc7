"""The node table: which processes a setup runs, with which names, namespaces, parameters and remaps.

One YAML file per setup in `launch/setups/<setup>.yaml`, read by both `robot-rl up <setup>` (sim, CI)
and `launch/robot_rl.launch.py` (`ros2 launch` on a ROS 2 install), so both start the same
executables with the same `--ros-args`:

    description: one simulated robot
    nodes:
      - name: sim_robot                  # ROS node name (-r __node:=...)
        package: robot_rl                # ROS package the executable belongs to
        executable: robot-rl-sim-node    # a console script of this project
        namespace: /robot_1              # optional, absolute (-r __ns:=...)
        parameters: [config/sim_robot.yaml]   # ROS params files, relative to launch/ (--params-file)
        overrides: {seed: 1}             # optional single parameters (-p name:=value), after the files
        remaps: {/clock: /robot_1/clock} # optional topic remaps (-r from:=to)
        mode: sim                        # sim: only with use_sim; real: only without; any: always
    env:                                 # optional: environment of every node (DDS discovery, its profile)
      ROS_STATIC_PEERS: "10.0.0.10;10.0.0.11"
      FASTRTPS_DEFAULT_PROFILES_FILE: "{launch_dir}/config/fastdds_lossy_network.xml"

`{launch_dir}` in an env value is this launch directory. `robot-rl up` and the launch file both set `env` for
every node they start (`robot-rl up --static-peers` wins over the table's ROS_STATIC_PEERS).

This module imports nothing from ROS.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

MODES = ("sim", "real", "any")
TOP_FIELDS = ("description", "nodes", "env")  # a table file's keys
NODE_FIELDS = ("name", "package", "executable", "namespace", "parameters", "overrides", "remaps", "mode")
REQUIRED_FIELDS = ("name", "package", "executable", "mode")
PACKAGE = "robot_rl"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NS_RE = re.compile(r"^(/[A-Za-z][A-Za-z0-9_]*)+$")
_PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC_RE = re.compile(r"^(/|~/)?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")


class TableError(ValueError):
    """A node table that cannot be used; the message names the setup, node and field."""


@dataclass(frozen=True)
class NodeEntry:
    """One process of a setup."""

    name: str  # ROS node name
    package: str  # ROS package of the executable
    executable: str  # console script name
    namespace: str  # "" or absolute ("/robot_1")
    parameters: tuple[Path, ...]  # absolute paths of ROS params files, applied in order
    overrides: tuple[tuple[str, object], ...]  # (parameter, value) applied after the files
    remaps: tuple[tuple[str, str], ...]  # (from, to) topic/service remaps
    mode: str  # one of MODES

    @property
    def fqn(self) -> str:
        """Fully qualified node name, e.g. /robot_1/sim_robot."""
        return f"{self.namespace}/{self.name}"

    def ros_args(self) -> list[str]:
        """`--ros-args ...` exactly as `ros2 run` / `ros2 launch` would pass them."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        for path in self.parameters:
            args += ["--params-file", str(path)]
        for key, value in self.overrides:
            args += ["-p", f"{key}:={value if isinstance(value, str) else json.dumps(value)}"]
        for src, dst in self.remaps:
            args += ["-r", f"{src}:={dst}"]
        return args

    def runs_with(self, use_sim: bool) -> bool:
        return self.mode == "any" or (self.mode == "sim") == use_sim


@dataclass(frozen=True)
class NodeTable:
    setup: str  # file stem in launch/setups
    description: str  # one line for humans
    nodes: tuple[NodeEntry, ...]
    env: tuple[tuple[str, str], ...] = ()  # (variable, value) set for every node of the setup

    def with_sets(self, sets: list[str]) -> NodeTable:
        """This table with command-line parameters `NODE:PARAM:=VALUE` applied after each node's overrides.

        NODE is a node name (every node of that name, in any namespace) or a fully qualified name; the value
        is passed verbatim (ROS parses it as YAML). A selector that matches no node is an error."""
        nodes = list(self.nodes)
        for item in sets:
            selector, sep, rest = item.partition(":")
            key, sep2, value = rest.partition(":=")
            if not (sep and sep2 and selector and _PARAM_RE.match(key)):
                raise TableError(f"--set {item!r}: expected NODE:PARAM:=VALUE, e.g. learner:demos:=demos/pick_cube")
            hits = [i for i, n in enumerate(nodes) if selector in (n.name, n.fqn)]
            if not hits:
                raise TableError(
                    f"--set {item!r}: setup {self.setup!r} has no node {selector!r}; its nodes are "
                    f"{[n.fqn for n in nodes]}"
                )
            for i in hits:
                kept = tuple((k, v) for k, v in nodes[i].overrides if k != key)
                nodes[i] = dataclasses.replace(nodes[i], overrides=kept + ((key, value),))
        return dataclasses.replace(self, nodes=tuple(nodes))

    def select(self, use_sim: bool) -> tuple[NodeEntry, ...]:
        """The entries that run with use_sim true (simulation) or false (hardware)."""
        return tuple(n for n in self.nodes if n.runs_with(use_sim))


def default_launch_dir() -> Path:
    """launch/ of the source tree (editable installs, CI), else <prefix>/share/robot_rl/launch (installed)."""
    source = Path(__file__).resolve().parents[2] / "launch"
    if (source / "setups").is_dir():
        return source
    return Path(sys.prefix) / "share" / PACKAGE / "launch"


def available_setups(launch_dir: Path | None = None) -> tuple[str, ...]:
    setups = (launch_dir or default_launch_dir()) / "setups"
    return tuple(sorted(p.stem for p in setups.glob("*.yaml")))


def project_executables() -> tuple[str, ...]:
    """Console scripts this project installs (what a table may name as executable)."""
    try:
        eps = metadata.distribution(PACKAGE).entry_points
    except metadata.PackageNotFoundError:
        return ()
    return tuple(sorted(ep.name for ep in eps if ep.group == "console_scripts"))


def load_table(setup: str, launch_dir: Path | None = None, executables: tuple[str, ...] | None = None) -> NodeTable:
    """Read and validate `launch/setups/<setup>.yaml`.

    `executables`: the valid executable names (default: this project's installed console scripts;
    pass () to skip the check, e.g. inside `ros2 launch` where the package may be installed differently).
    """
    launch_dir = Path(launch_dir) if launch_dir is not None else default_launch_dir()
    path = launch_dir / "setups" / f"{setup}.yaml"
    if not path.is_file():
        raise TableError(
            f"no setup {setup!r} in {launch_dir / 'setups'}; choose one of {list(available_setups(launch_dir))}"
        )
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise TableError(f"setup {setup!r} ({path}) is not valid YAML: {err}") from None
    if not isinstance(doc, dict) or set(doc) - set(TOP_FIELDS) or not isinstance(doc.get("nodes"), list):
        raise TableError(
            f"setup {setup!r} must be a mapping with 'description' (text), 'nodes' (a list) and optionally 'env'; "
            f"got {type(doc).__name__} with keys {sorted(doc) if isinstance(doc, dict) else []}"
        )
    if not doc["nodes"]:
        raise TableError(f"setup {setup!r} lists no nodes")
    executables = project_executables() if executables is None else executables
    nodes = tuple(_entry(setup, i, raw, launch_dir, executables) for i, raw in enumerate(doc["nodes"]))
    seen: set[str] = set()
    for node in nodes:
        if node.fqn in seen:
            raise TableError(
                f"setup {setup!r}: two nodes are both named {node.fqn}; give each a unique name or namespace"
            )
        seen.add(node.fqn)
    env = _env(setup, doc.get("env", {}), launch_dir)
    return NodeTable(setup=setup, description=str(doc.get("description", "")), nodes=nodes, env=env)


def _env(setup: str, raw: object, launch_dir: Path) -> tuple[tuple[str, str], ...]:
    """The table's `env`: variable names and text values (numbers written as text), `{launch_dir}` filled in."""
    if not isinstance(raw, dict):
        raise TableError(f"setup {setup!r}, field 'env': expected a mapping of variable name to value, got {raw!r}")
    out = []
    for name, value in raw.items():
        if not (isinstance(name, str) and _ENV_RE.match(name)) or not isinstance(value, (str, int, float)):
            raise TableError(
                f"setup {setup!r}, field 'env': {name!r}: {value!r} must be a variable name (letters, digits, "
                "underscores) and a text or number value"
            )
        out.append((name, str(value).replace("{launch_dir}", str(launch_dir.resolve()))))
    return tuple(out)


def _entry(setup: str, index: int, raw: object, launch_dir: Path, executables: tuple[str, ...]) -> NodeEntry:
    where = f"setup {setup!r}, node #{index}"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: each node must be a mapping of {list(NODE_FIELDS)}, got {raw!r}")
    if isinstance(raw.get("name"), str):
        where = f"setup {setup!r}, node {raw['name']!r}"
    unknown = sorted(set(raw) - set(NODE_FIELDS))
    if unknown:
        raise TableError(f"{where}: unknown fields {unknown}; valid fields are {list(NODE_FIELDS)}")
    missing = [f for f in REQUIRED_FIELDS if f not in raw]
    if missing:
        raise TableError(f"{where}: missing required fields {missing}")

    def text(field: str, pattern: re.Pattern | None, expected: str, default: str | None = None) -> str:
        value = raw.get(field, default)
        if not isinstance(value, str) or (pattern is not None and value and not pattern.match(value)):
            raise TableError(f"{where}, field {field!r}: {value!r} is not {expected}")
        return value

    name = text("name", _NAME_RE, "a ROS node name (letters, digits, underscores; starts with a letter)")
    package = text("package", _NAME_RE, "a ROS package name")
    executable = text("executable", None, "an executable name")
    if executables and executable not in executables:
        raise TableError(
            f"{where}, field 'executable': {executable!r} is not installed; choose one of {list(executables)}"
        )
    namespace = text("namespace", _NS_RE, "an absolute namespace like /robot_1 (or empty)", default="")
    mode = raw["mode"]
    if mode not in MODES:
        raise TableError(f"{where}, field 'mode': {mode!r}; choose one of {list(MODES)}")

    files = raw.get("parameters", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise TableError(
            f"{where}, field 'parameters': expected a list of params file paths relative to launch/, got {files!r}"
        )
    parameters = tuple(_params_file(where, launch_dir, f) for f in files)

    overrides = raw.get("overrides", {})
    if not isinstance(overrides, dict):
        raise TableError(
            f"{where}, field 'overrides': expected a mapping of parameter name to value, got {overrides!r}"
        )
    for key, value in overrides.items():
        if not isinstance(key, str) or not _PARAM_RE.match(key) or not isinstance(value, (bool, int, float, str, list)):
            raise TableError(
                f"{where}, field 'overrides': {key!r}: {value!r} must be a parameter name and a "
                "bool, int, float, string or list"
            )

    remaps = raw.get("remaps", {})
    if not isinstance(remaps, dict):
        raise TableError(f"{where}, field 'remaps': expected a mapping of from-name to to-name, got {remaps!r}")
    for src, dst in remaps.items():
        if not (isinstance(src, str) and _TOPIC_RE.match(src) and isinstance(dst, str) and _TOPIC_RE.match(dst)):
            raise TableError(
                f"{where}, field 'remaps': {src!r} -> {dst!r} must both be ROS topic names like /clock or joint_states"
            )
    return NodeEntry(
        name, package, executable, namespace, parameters, tuple(overrides.items()), tuple(remaps.items()), mode
    )


def _params_file(where: str, launch_dir: Path, rel: str) -> Path:
    path = (launch_dir / rel).resolve()
    if not path.is_file():
        raise TableError(f"{where}, field 'parameters': no file {rel!r} under {launch_dir}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise TableError(f"{where}, field 'parameters': {rel} is not valid YAML: {err}") from None
    ok = isinstance(doc, dict) and doc and all(isinstance(v, dict) and "ros__parameters" in v for v in doc.values())
    if not ok:
        raise TableError(
            f"{where}, field 'parameters': {rel} is not a ROS params file; expected "
            "'<node name or /**>: {ros__parameters: {...}}' at the top level"
        )
    return path
