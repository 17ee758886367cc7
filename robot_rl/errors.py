"""Errors a person acts on: one line on stderr, an exit code, no traceback.

Raise `UsageError` for a bad command line (wrong value, missing file, choices that do not fit
together: exit 2) and `RunError` for what went wrong while running (a corrupt store, a full disk,
a device that is not there: exit 1). The message says what is wrong and what to do, in one line.
`robot-rl` prints `robot-rl: error: <message>`; with `--debug` or `ROBOT_RL_DEBUG=1` it also
prints the traceback. Library errors that already carry a readable message (a corrupt store, a
bad mapping file) are listed in `robot_rl.cli.READABLE_ERRORS` and treated as `RunError`.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors `robot-rl` reports as one line."""

    exit_code = 1


class UsageError(UserError):
    """The command line asks for something that cannot work (exit 2)."""

    exit_code = 2


class RunError(UserError):
    """Running failed for a reason the user can fix (exit 1)."""

    exit_code = 1
