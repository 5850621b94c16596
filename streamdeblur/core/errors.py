"""Errors that end a run with one clear line on stderr instead of a traceback.

Anything the user can cause (a missing file, a wrong checkpoint, an unwritable output) is
raised as a `StreamdeblurError`; the CLI prints its message and exits with its code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130


class StreamdeblurError(Exception):
    """A failure the user can act on; `str(err)` is the one line shown to them."""

    exit_code = EXIT_FAILED


class UsageError(StreamdeblurError):
    """The command line itself is wrong (unknown model, bad size, conflicting options)."""

    exit_code = EXIT_USAGE


class InputError(StreamdeblurError):
    """The input cannot be read: missing, empty, not a video or image, truncated."""


class OutputError(StreamdeblurError):
    """The output cannot be written: exists without --overwrite, unwritable, bad extension."""


class WeightsError(StreamdeblurError):
    """Weights are missing, unreadable, or belong to another model."""


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line (libraries' messages can run long)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
