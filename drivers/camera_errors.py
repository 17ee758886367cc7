"""What a camera adapter raises when it has no new frame to give: a fault (retry) or the end of a file (stop)."""

from __future__ import annotations


class CameraError(RuntimeError):
    """The device could not be opened or stopped delivering frames; reopening it may help."""


class EndOfStream(Exception):
    """A video file played to its end and is not looping: there will be no more frames."""
