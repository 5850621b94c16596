"""An image, or a numbered image sequence, written atomically (16-bit where the format holds it)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamdeblur.core.errors import OutputError
from streamdeblur.core.files import atomic_write, partial_path, publish
from streamdeblur.core.frame import Frame, to_rgb8
from streamdeblur.io.sinks.base import Sink

_NO_16BIT = {".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".jp2"}


class ImageSink(Sink):
    """One image; 16-bit sources stay 16-bit where the format allows, alpha is re-attached."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._frame: Frame | None = None

    def write(self, frame: Frame) -> None:
        self._frame = frame

    def finish(self) -> None:
        if self._frame is not None:
            write_image(self.path, self._frame)

    def abort(self) -> None:
        self._frame = None


class ImageSequenceSink(Sink):
    """Numbered images from a printf pattern, numbered like the input's files.

    Like the other sinks, every file is written under its `.partial` name and renamed when
    the run finishes, so a failed run leaves nothing and replaces nothing.
    """

    def __init__(self, pattern: str, numbers: list[int]) -> None:
        self.pattern = pattern
        self.path = Path(pattern)
        self.numbers = numbers
        self.warnings = []
        self._written: list[Path] = []

    def write(self, frame: Frame) -> None:
        target = Path(self.pattern % self.numbers[frame.index])
        write_image(partial_path(target), frame)
        self._written.append(target)

    def finish(self) -> None:
        for target in self._written:
            publish(partial_path(target), target)

    def abort(self) -> None:
        for target in self._written:
            partial_path(target).unlink(missing_ok=True)


def write_image(path: Path, frame: Frame) -> None:
    """Write atomically (`atomic_write`); RGB to BGR for OpenCV, alpha appended."""
    image = to_rgb8(frame.image) if path.suffix.lower() in _NO_16BIT else frame.image
    bgr = image[:, :, ::-1]
    if frame.alpha is not None:
        alpha = frame.alpha
        if alpha.dtype != bgr.dtype:
            alpha = (alpha.astype(np.uint16) * 257) if bgr.dtype == np.uint16 else to_rgb8(alpha)
        bgr = np.dstack([bgr, alpha])

    def write(temp: Path) -> None:
        try:
            ok = cv2.imwrite(str(temp), np.ascontiguousarray(bgr))
        except cv2.error as err:
            raise OutputError(
                f"{path}: cannot write image ({err.msg.strip() if hasattr(err, 'msg') else err})"
            ) from None
        if not ok:
            raise OutputError(f"{path}: cannot write image")

    atomic_write(path, write)
