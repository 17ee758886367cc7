"""Files stay small and functions readable in one screenful: no Python file under robot_rl/, sim/, drivers/ or
calibration/ over 400 lines, no function (or method) over 80 lines, counted from its `def` line to its last line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED_DIRS = ("robot_rl", "sim", "drivers", "calibration")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _python_files(root: Path) -> list[Path]:
    return sorted(p for d in CHECKED_DIRS for p in (root / d).rglob("*.py") if "__pycache__" not in p.parts)


def oversized(path: Path, max_file_lines: int = MAX_FILE_LINES, max_function_lines: int = MAX_FUNCTION_LINES):
    """["path: N lines", "path:line name(): N lines", ...] for the file and each function over its limit."""
    text = path.read_text(encoding="utf-8")
    found = []
    n_lines = len(text.splitlines())
    if n_lines > max_file_lines:
        found.append(f"{path}: {n_lines} lines (at most {max_file_lines}; split it along a seam)")
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > max_function_lines:
                found.append(f"{path}:{node.lineno} {node.name}(): {length} lines (at most {max_function_lines})")
    return found


def test_no_file_over_400_lines_and_no_function_over_80():
    files = _python_files(ROOT)
    assert len(files) > 100, f"only {len(files)} files found under {CHECKED_DIRS}: is ROOT {ROOT} right?"
    found = [line for path in files for line in oversized(path)]
    assert not found, "too long:\n" + "\n".join(line.replace(f"{ROOT}/", "") for line in found)


def test_the_check_catches_a_long_file_and_a_long_method_but_not_ones_at_the_limit(tmp_path):
    at_limit = tmp_path / "at_limit.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    at_limit.write_text("def f():\n" + body + "\n" * (MAX_FILE_LINES - MAX_FUNCTION_LINES))
    assert len(at_limit.read_text().splitlines()) == MAX_FILE_LINES
    assert oversized(at_limit) == []

    too_long = tmp_path / "too_long.py"
    method = "class C:\n    async def m(self):\n" + "".join(f"        y{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    too_long.write_text(method + "\n" * (MAX_FILE_LINES - MAX_FUNCTION_LINES))
    found = oversized(too_long)
    assert len(found) == 2, found
    assert found[0].endswith(f"{MAX_FILE_LINES + 2} lines (at most {MAX_FILE_LINES}; split it along a seam)")
    assert found[1].endswith(f":2 m(): {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})")
