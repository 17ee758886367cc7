"""The code is linted and formatted with ruff (its settings: [tool.ruff] in pyproject.toml); CI runs this file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = [sys.executable, "-m", "ruff"]


def test_ruff_check_finds_nothing():
    out = subprocess.run(
        [*RUFF, "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"ruff check (fix: ruff check --fix .):\n{out.stdout[-4000:]}{out.stderr[-2000:]}"


def test_ruff_format_leaves_every_file_as_it_is():
    out = subprocess.run(
        [*RUFF, "format", "--no-cache", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, (
        f"ruff format would change (fix: ruff format .):\n{out.stdout[-4000:]}{out.stderr[-2000:]}"
    )


def test_ruff_does_catch_an_unused_import_and_a_badly_formatted_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = {  'a':1 }\n")
    cfg = ["--config", str(ROOT / "pyproject.toml")]
    assert subprocess.run([*RUFF, "check", "--no-cache", *cfg, str(bad)], capture_output=True).returncode == 1
    assert (
        subprocess.run([*RUFF, "format", "--no-cache", *cfg, "--check", str(bad)], capture_output=True).returncode == 1
    )
