"""Raw rgb24 frames on stdout (`-o -`), for piping into another program."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from streamdeblur.core.frame import Frame, to_rgb8
from streamdeblur.io.sinks.base import Sink
from streamdeblur.io.sources import (
    SourceInfo,
)

STDOUT = "-"


class RawSink(Sink):
    """Raw rgb24 frames (W x H x 3 bytes each, no header) on stdout, for piping into other tools."""

    def __init__(self, info: SourceInfo) -> None:
        self.path = Path(STDOUT)
        self.warnings = []
        self.out = sys.stdout.buffer
        self.size = (info.width, info.height)

    def describe(self) -> str:
        return f"rgb24 {self.size[0]}x{self.size[1]} frames on stdout"

    def write(self, frame: Frame) -> None:
        if self.failed:
            return
        image = to_rgb8(frame.image)
        try:
            self.out.write(np.ascontiguousarray(image).data)
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.failed = "-: the program reading stdout has stopped"
            # Keep Python from complaining about the closed pipe again when it exits.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass
