"""The docs stay true to the code: every command in README.md and docs/*.md parses, and every link leads somewhere.

Commands are read from fenced shell blocks and from inline code spans that start with a command (table cells and
prose). `robot-rl ...`: the (sub)command exists and every flag it uses is listed by its `--help`, run once per
subcommand as a user would; a fenced command must also parse whole with the CLI's own parser; the training options
inside `bench learning --train-args=...` / `--variant NAME="..."` are checked against `robot-rl train`. ROS 2
executables (`robot-rl-*-node`) must be scripts this project installs; their `-p NAME:=` parameters and the ones
`robot-rl up SETUP --set NODE:NAME:=` sets must be fields of that node's config dataclass (dotted adapter
parameters such as `ros2_control.preset` are declared at run time and not checked), and a `--params-file` must
exist. Placeholders (`DIR`, `N`, `[--flag]`, `a\\|b`, `...`) are read as what they stand for.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

from robot_rl.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
ROBOT_RL = Path(sys.executable).parent / "robot-rl"
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SHELLS = ("bash", "sh", "shell", "console")
FLAG = re.compile(r"^--?[A-Za-z][\w-]*")
ROS_BUILTIN_PARAMS = ("use_sim_time",)


@dataclasses.dataclass(frozen=True)
class Command:
    where: str  # page and what the command looked like, for failure messages
    words: tuple[str, ...]  # argv, placeholders stripped; words[0] is robot-rl or a robot-rl-*-node executable
    fenced: bool  # from a fenced shell block (must parse whole) or an inline span (flags only)


def _words(text: str) -> list[str]:
    """argv of one command with `VAR=x` prefixes, `./run.sh`, `[ ]` around optional parts and `...` removed."""
    text = text.replace("\\|", "|").replace("…", "...")
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # a table cell's quotes need not balance
        words = text.split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words.pop(0)
    if words[:2] == ["./run.sh", "train"]:
        words = ["robot-rl", *words[1:]]
    elif words[:2] == ["./run.sh", "robot-rl"]:
        words = words[1:]
    words = [w.strip("[]") for w in words]
    return [w for w in words if w and w != "..."]


def _is_command(words: list[str]) -> bool:
    return bool(words) and (words[0] == "robot-rl" or re.fullmatch(r"robot-rl-[a-z-]+-node", words[0]) is not None)


def commands_in(text: str, page: str) -> list[Command]:
    """The commands of one page: each line of a fenced shell block (backslash continuations joined), and each inline
    code span (paired within its paragraph) that starts with a command or with `--set` (options of `robot-rl up`)."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang in SHELLS:
            for line in body.replace("\\\n", " ").splitlines():
                words = _words(line)
                if _is_command(words):
                    found.append(Command(f"{page}: {line.strip()}", tuple(words), fenced=True))
    for paragraph in re.split(r"\n\s*\n", FENCE.sub("", text)):
        for span in re.findall(r"`([^`]+)`", paragraph):
            words = _words(span)
            if words[:1] == ["--set"] and ":=" in span:  # `robot-rl up` parameters: `--set actor:obs_mode:=pixels`
                words = ["robot-rl", "up", "SETUP", *words]
            if _is_command(words):
                found.append(Command(f"{page}: `{' '.join(span.split())}`", tuple(words), fenced=False))
    return found


@cache
def all_commands() -> tuple[Command, ...]:
    return tuple(c for page in PAGES for c in commands_in(page.read_text(), page.relative_to(ROOT).as_posix()))


@cache
def _parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every (sub)command path of `robot-rl` and its parser, groups included: {("bench", "sim"): parser, ...}."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        found[path] = parser
        for action in parser._actions:  # argparse keeps subparsers here; there is no public accessor
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


def subcommand_uses(words: tuple[str, ...]) -> list[tuple[tuple[str, ...], list[str]]]:
    """(subcommand path, its words) for a `robot-rl` command; `reward record|label` gives one per alternative.
    A path that is not a subcommand is returned as it is (and refused by the caller); a placeholder (`<command>`,
    `SETUP`) ends the path."""
    paths: list[tuple[str, ...]] = [()]
    rest = list(words[1:])
    while rest and not re.match(r"[-<A-Z]", rest[0]) and any(p in _parsers() and _has_subcommands(p) for p in paths):
        alternatives = rest.pop(0).split("|")
        paths = [(*p, alt) for p in paths for alt in alternatives]
    return [(p, rest) for p in paths]


def _has_subcommands(path: tuple[str, ...]) -> bool:
    return any(len(other) == len(path) + 1 and other[: len(path)] == path for other in _parsers())


def flags_used(path: tuple[str, ...], words: list[str]) -> list[tuple[tuple[str, ...], str]]:
    """(subcommand path, flag) for every flag in `words`; `bench learning`'s training options count for `train`."""
    used = []
    for i, word in enumerate(words):
        flag = FLAG.match(word)
        if flag:
            used.append((path, flag[0]))
        nested = None
        if path == ("bench", "learning") and word.startswith("--train-args="):
            nested = word.partition("=")[2]
        elif path == ("bench", "learning") and i > 0 and words[i - 1] == "--variant" and "=" in word:
            nested = word.partition("=")[2]
        if nested:
            used += [(("train",), f[0]) for w in _words(nested) if (f := FLAG.match(w))]
    return used


@cache
def help_flags(path: tuple[str, ...]) -> frozenset[str]:
    """The options `robot-rl PATH --help` lists (the real console script, as a user runs it): the flags at the start
    of its option lines (`  -s, --steps N   help...`), not ones its help text mentions."""
    out = subprocess.run([str(ROBOT_RL), *path, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"robot-rl {' '.join(path)} --help failed: {out.stderr[-500:]}"
    heads = [line.strip().split("  ")[0] for line in out.stdout.splitlines() if line.strip().startswith("-")]
    return frozenset(flag for head in heads for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", head))


def test_the_docs_hold_the_commands_this_file_checks():
    commands = all_commands()
    fenced = [c for c in commands if c.fenced]
    assert len(fenced) >= 20 and len(commands) >= 120, (len(fenced), len(commands))
    paths = {p for c in commands if c.words[0] == "robot-rl" for p, _ in subcommand_uses(c.words)}
    assert {("train",), ("bench", "learning"), ("reward", "label"), ("up",), ("data", "repair")} <= paths


def test_every_robot_rl_command_in_the_docs_names_a_subcommand_and_only_flags_its_help_lists():
    uses = [(c, p, w) for c in all_commands() if c.words[0] == "robot-rl" for p, w in subcommand_uses(c.words)]
    unknown = [f"{c.where}: `robot-rl {' '.join(p)}` is no command" for c, p, _ in uses if p not in _parsers()]
    assert not unknown, "\n".join(unknown)
    flags = {(c.where, path, flag) for c, p, w in uses for path, flag in flags_used(p, w)}
    with ThreadPoolExecutor(4) as pool:  # one --help per subcommand, a few at a time
        list(pool.map(help_flags, sorted({path for _, path, _ in flags} | {p for _, p, _ in uses})))
    missing = [
        f"{where}: `robot-rl {' '.join(path)} --help` lists no {flag}"
        for where, path, flag in sorted(flags)
        if flag not in help_flags(path)
    ]
    assert not missing, "\n".join(missing)


def test_every_fenced_robot_rl_command_parses_whole():
    bad = []
    for command in (c for c in all_commands() if c.fenced and c.words[0] == "robot-rl"):
        try:
            build_parser().parse_args(list(command.words[1:]))
        except SystemExit:
            bad.append(command.where)
    assert not bad, "these commands do not parse (the parser's message is above):\n" + "\n".join(bad)


@cache
def _node_params(executable: str) -> frozenset[str]:
    """The parameters a project node declares: the fields of the config dataclasses given to `declare_config` in its
    module and in the modules of its classes' bases (the sim robot node declares the arm node's too)."""
    (entry,) = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == executable]
    module = importlib.import_module(entry.value.partition(":")[0])
    modules = {module}
    for obj in vars(module).values():
        if isinstance(obj, type) and obj.__module__ == module.__name__:
            modules |= {sys.modules[c.__module__] for c in obj.__mro__ if c.__module__ in sys.modules}
    names: set[str] = set()
    for mod in modules:
        path = getattr(mod, "__file__", None) or ""
        for config in set(
            re.findall(r"declare_config\(self, (\w+)\(\)\)", Path(path).read_text() if path.endswith(".py") else "")
        ):
            names |= {f.name for f in dataclasses.fields(getattr(mod, config))}
    assert names, f"{executable}: no declare_config(self, Config()) found in {module.__name__} or its bases' modules"
    return frozenset(names)


def _set_problems(command: Command) -> list[str]:
    """`robot-rl up SETUP --set NODE:PARAM:=V`: a real setup, and a node in it that declares PARAM."""
    from robot_rl.nodes.table import TableError, load_table

    words = list(command.words)
    setup = words[2] if len(words) > 2 and not words[2].startswith("-") else "SETUP"
    sets = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--set" and not re.match("[A-Z]", words[i + 1])]
    if setup == "SETUP":  # any setup: the node names of every table
        tables = [load_table(name) for name in _setups()]
    else:
        try:
            tables = [load_table(setup).with_sets(sets)]
        except TableError as err:
            return [f"{command.where}: {err}"]
    nodes = {n.name: n.executable for t in tables for n in t.nodes}
    problems = []
    for item in sets:
        node, _, rest = item.partition(":")
        param = rest.partition(":=")[0]
        if node not in nodes:
            problems.append(f"{command.where}: no setup has a node {node!r}")
        elif param not in _node_params(nodes[node]) | set(ROS_BUILTIN_PARAMS):
            problems.append(f"{command.where}: {nodes[node]} declares no parameter {param!r}")
    return problems


def _setups() -> tuple[str, ...]:
    from robot_rl.nodes.table import available_setups

    return available_setups()


def _node_problems(command: Command, scripts: set[str]) -> list[str]:
    """`robot-rl-X-node --ros-args ...`: a script of this project, `-p` parameters it declares, existing params files."""
    executable, words = command.words[0], command.words
    if executable not in scripts:
        return [f"{command.where}: {executable} is not a script this project installs"]
    problems = []
    for option, value in zip(words, words[1:]):
        name = value.partition(":=")[0]
        if option == "-p" and "." not in name and name not in _node_params(executable) | set(ROS_BUILTIN_PARAMS):
            problems.append(f"{command.where}: {executable} declares no parameter {name!r}")
        if option == "--params-file" and not (ROOT / value).is_file():
            problems.append(f"{command.where}: no file {value}")
    return problems


def test_every_ros_executable_parameter_and_params_file_in_the_docs_exists():
    scripts = {ep.name for ep in metadata.entry_points(group="console_scripts")}
    problems = []
    for command in all_commands():
        if command.words[0] != "robot-rl":
            problems += _node_problems(command, scripts)
        elif command.words[1:2] == ("up",):
            problems += _set_problems(command)
    assert not problems, "\n".join(problems)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to '-', repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def link_problems(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(root)}: link ({target})"
        if not dest.exists():
            problems.append(f"{where}: no file {dest.relative_to(root) if dest.is_relative_to(root) else dest}")
        elif anchor and (dest.suffix != ".md" or anchor not in _anchors(dest)):
            problems.append(f"{where}: {dest.name} has no heading #{anchor}")
    return problems


def test_every_relative_link_in_the_docs_leads_to_an_existing_file_and_heading():
    problems = [p for page in PAGES for p in link_problems(page)]
    assert not problems, "\n".join(problems)
    readme = (ROOT / "README.md").read_text()
    orphans = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in readme]
    assert not orphans, f"docs pages the README does not link to: {orphans}"


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("`robot-rl train --stepz 10`", "lists no --stepz"),
        ('```bash\nrobot-rl bench learning --task pick_cube --variant a="--bc-wieght 1"\n```', "lists no --bc-wieght"),
        ("`robot-rl reward record\\|lable`", "`robot-rl reward lable` is no command"),
    ],
)
def test_a_misspelt_flag_or_subcommand_is_caught(text, complaint, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "all_commands", lambda: tuple(commands_in(text, "x.md")))
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        test_every_robot_rl_command_in_the_docs_names_a_subcommand_and_only_flags_its_help_lists()


def test_a_broken_link_or_anchor_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[ok](#a-title) [gone](missing.md) [bad](#no-such-heading)\n")
    assert link_problems(page, root=tmp_path) == [
        "page.md: link (missing.md): no file missing.md",
        "page.md: link (#no-such-heading): page.md has no heading #no-such-heading",
    ]


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("`robot-rl-learner-node --ros-args -p demoz:=d`", "robot-rl-learner-node declares no parameter 'demoz'"),
        ("`--set actor:obs_mod:=pixels`", "robot-rl-actor-node declares no parameter 'obs_mod'"),
        ("`robot-rl up sim_train --set arm:demos:=d`", "setup 'sim_train' has no node 'arm'"),
        (
            "`robot-rl-learner-node --ros-args --params-file launch/config/learnr.yaml`",
            "no file launch/config/learnr.yaml",
        ),
    ],
)
def test_a_parameter_no_node_declares_is_caught(text, complaint, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "all_commands", lambda: tuple(commands_in(text, "x.md")))
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        test_every_ros_executable_parameter_and_params_file_in_the_docs_exists()
