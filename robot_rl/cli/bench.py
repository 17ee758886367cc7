"""robot-rl bench (placeholder: filled in by its owner)."""

from __future__ import annotations


def register(sub) -> None:
    pass
