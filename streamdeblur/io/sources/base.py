"""What every source is: a `SourceInfo` and frames with the timing the input had."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from streamdeblur.core.frame import Frame
from streamdeblur.core.timing import StageTimer
from streamdeblur.io.colour import (
    ColourInfo,
)
from streamdeblur.io.damage import Damage


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, known before the first frame is decoded."""

    uri: str
    kind: str  # "video", "image" or "sequence"
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int | None
    bit_depth: int
    colour: ColourInfo
    pix_fmt: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


class Source:
    """Base class: iterate `frames()`, read `info`, close when done (also as a context manager).

    `damage` is set once `frames()` has ended if the input turned out damaged (its frames that
    decoded came all the same).
    """

    info: SourceInfo
    damage: Damage | None = None

    def frames(self) -> Iterator[Frame]:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def input_files(self) -> list[Path]:
        """The files this source reads (an output must not overwrite them)."""
        return []

    def attach(self, stop: threading.Event, decode: StageTimer) -> None:
        """Join the pipeline that reads this source (live sources stop waiting when it stops)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
