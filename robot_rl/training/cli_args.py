"""A small dataclass -> argparse bridge: one parser built from typed config dataclasses.

Every field of a config dataclass becomes one option, named after the field (`demo_fraction`
-> `--demo-fraction`), typed from its annotation, with the field's trailing `# comment` as help:

    bool                        -> --flag / --no-flag
    int, float, str, Path       -> --x VALUE
    Literal["a", "b"]           -> --x {a,b}
    X | None                    -> --x VALUE (the default may be None)
    tuple[int, ...], list[...]  -> --x V [V ...]
    a nested dataclass          -> its fields, flattened (prefixed `<field>-` where a name collides)

Options default to argparse.SUPPRESS, so `config_from_args` can tell what the user typed from
what a dataclass default (or a saved config being resumed) supplies.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal


def field_comments(cls: type) -> dict[str, str]:
    """The trailing `# comment` of each field in a dataclass's source: {"steps": "env steps to train for"}."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        last_name: str | None = None
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.start[1] == 4 and last_name is None:
                last_name = tok.string  # first name on an indented class-body line: a field (or a method keyword)
            elif tok.type == tokenize.COMMENT and last_name is not None:
                comments[last_name] = tok.string.lstrip("#").strip()
                last_name = None  # the field's first comment, also inside a wrapped `= (\n value  # help\n)`
            if tok.type == tokenize.NEWLINE:  # a logical line's end (NL only ends a physical one)
                last_name = None
    return comments


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, else (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f"only `X | None` unions are supported on the command line, got {tp}")
    return tp, False


def _argparse_kwargs(tp: Any, default: Any) -> dict[str, Any]:
    tp, optional = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        choices = typing.get_args(tp)
        return {"type": type(choices[0]), "choices": choices}
    if origin in (tuple, list):
        items = typing.get_args(tp)
        fixed = origin is tuple and Ellipsis not in items
        return {"type": items[0], "nargs": len(items) if fixed else ("*" if optional else "+")}
    if tp in (int, float, str, Path):
        return {"type": tp}
    raise TypeError(
        f"unsupported config field type {tp} (supported: bool, int, float, str, Path, Literal, tuple, X | None)"
    )


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _dest(path: tuple[str, ...]) -> str:
    return "__".join(path)


def cli_settable(tp: Any) -> bool:
    """Whether a field type has a command-line form (dict-valued fields, e.g. free-form notes, do not)."""
    try:
        _argparse_kwargs(tp, None)
        return True
    except TypeError:
        return False


def add_dataclass_args(
    parser: argparse.ArgumentParser, cls: type, aliases: dict[str, tuple[str, ...]] | None = None
) -> None:
    """Add one option per (nested) field of `cls` to `parser`.

    `aliases` maps a field name to extra option strings, e.g. {"utd_ratio": ("--utd",)}. Fields without a
    command-line form (dicts) are left to the config file.
    """
    taken = {o for a in parser._actions for o in a.option_strings}
    try:
        defaults = cls()  # help shows the defaults of the whole config, nested default factories included
    except TypeError:  # a field without a default
        defaults = None
    _add(parser, cls, (), taken, aliases or {}, defaults)


def _add(
    parser: argparse.ArgumentParser,
    cls: type,
    prefix: tuple[str, ...],
    taken: set[str],
    aliases: dict[str, tuple[str, ...]],
    defaults: Any,
) -> None:
    comments = field_comments(cls)
    group = parser.add_argument_group(f"{cls.__name__} options" + (f" ({'.'.join(prefix)})" if prefix else ""))
    nested = []
    for f, tp in _fields(cls):
        if dataclasses.is_dataclass(tp):
            nested.append((f, tp))
            continue
        if not cli_settable(tp):
            continue
        option = _option(f.name)
        if option in taken:
            option = _option("_".join((*prefix, f.name)))
        if option in taken:
            raise ValueError(f"option {option} for {cls.__name__}.{f.name} collides with an existing option")
        taken.add(option)
        default = getattr(defaults, f.name) if defaults is not None else _default_of(f)
        help_text = comments.get(f.name, "")
        help_text = f"{help_text} (default: {default!r})".replace("%", "%%")
        extra = tuple(a for a in aliases.get(f.name, ()) if a not in taken)
        taken.update(extra)
        kwargs = _argparse_kwargs(tp, default)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs["metavar"] = f.name.upper()
        group.add_argument(
            option, *extra, dest=_dest((*prefix, f.name)), default=argparse.SUPPRESS, help=help_text, **kwargs
        )
    for f, tp in nested:
        _add(parser, tp, (*prefix, f.name), taken, aliases, getattr(defaults, f.name, None))


def option_names(cls: type, aliases: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """{"steps": "--steps", "agent.batch_size": "--batch-size", ...}: the option `add_dataclass_args` gives each
    (nested) field, for messages that name what the user typed."""
    parser = argparse.ArgumentParser(add_help=False)
    add_dataclass_args(parser, cls, aliases)
    return {a.dest.replace("__", "."): a.option_strings[0] for a in parser._actions if a.option_strings}


def given_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields the user typed, as a nested dict ({"steps": 5000, "agent": {"batch_size": 128}})."""
    return _collect(vars(args), cls, ())


def _collect(given: dict[str, Any], cls: type, prefix: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, tp in _fields(cls):
        if dataclasses.is_dataclass(tp):
            sub = _collect(given, tp, (*prefix, f.name))
            if sub:
                out[f.name] = sub
        elif _dest((*prefix, f.name)) in given:
            value = given[_dest((*prefix, f.name))]
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def replace_nested(config: Any, overrides: dict[str, Any]) -> Any:
    """dataclasses.replace that descends into nested dataclass fields."""
    changes = {}
    for name, value in overrides.items():
        current = getattr(config, name)
        nested = dataclasses.is_dataclass(current) and isinstance(value, dict)
        changes[name] = replace_nested(current, value) if nested else value
    return dataclasses.replace(config, **changes)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from `dataclasses.asdict` output (e.g. read back from JSON).

    Unknown keys are an error naming the valid fields; missing keys take the dataclass default.
    """
    by_name = {f.name: (f, tp) for f, tp in _fields(cls)}
    unknown = sorted(set(data) - set(by_name))
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {unknown}; valid fields: {sorted(by_name)}")
    kwargs = {}
    for name, value in data.items():
        f, tp = by_name[name]
        base, _ = _unwrap_optional(tp)
        if dataclasses.is_dataclass(base) and isinstance(value, dict):
            value = from_dict(base, value)
        elif typing.get_origin(base) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
