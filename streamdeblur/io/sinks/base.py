"""What every sink is: `write` frames, then `finish` (complete, playable) or `abort` (nothing left).

Whatever the kind, a file is written under a temporary name and renamed when complete, so a
failed run never leaves a half file that looks done and never damages an existing file.
Outputs that can go away mid-run (a network server, the program reading stdout) set
`failed` instead of raising, so the run stops gracefully and recordings are still finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streamdeblur.core.frame import Frame

DEFAULT_CRF = 18


@dataclass(frozen=True)
class EncodeOptions:
    codec: str | None = None  # None: the output container's default (`io/containers.py`)
    crf: int = DEFAULT_CRF


class Sink:
    """Base class: `write(frame)` each frame, then `finish()` (complete) or `abort()` (discard)."""

    path: Path
    warnings: list[str]
    failed: str | None = None  # set by outputs that can go away mid-run (a stream receiver)

    def describe(self) -> str:
        """What the status line calls this output."""
        return str(self.path)

    def write(self, frame: Frame) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError
