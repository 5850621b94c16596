"""Still images and numbered image sequences (`frames/%04d.png` or a quoted glob)."""

from __future__ import annotations

import glob
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from streamdeblur.core.errors import InputError
from streamdeblur.core.frame import Frame
from streamdeblur.io.colour import (
    RANGE_FULL,
    resolve_colour,
)
from streamdeblur.io.sources.base import Source, SourceInfo
from streamdeblur.io.stills import read_image

SEQUENCE_FPS = Fraction(25)  # image sequences carry no rate; FFmpeg's image2 default
_PRINTF = re.compile(r"%0?(\d*)d")
_GLOB_CHARS = set("*?[")


class ImageSource(Source):
    """A single image, processed as a one-frame video (alpha, if any, passes through)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._image, self._alpha = read_image(self.path)
        self.info = _still_info(str(self.path), "image", self._image, 1)

    @property
    def input_files(self) -> list[Path]:
        return [self.path]

    def frames(self) -> Iterator[Frame]:
        yield Frame(0, self._image, 0, self.info.time_base, alpha=self._alpha)


class ImageSequenceSource(Source):
    """Numbered images (`frames/%04d.png`) or a quoted glob (`'frames/*.png'`) as one video.

    Frames are ordered by their number (natural order for globs) and given pts = position at
    25 fps; `numbers` keeps each file's own number so an output pattern can reuse it.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.paths, self.numbers = expand_sequence(pattern)
        if not self.paths:
            raise InputError(f"{pattern}: no images match")
        self._first = read_image(self.paths[0])  # its size and depth describe the sequence
        self.info = _still_info(pattern, "sequence", self._first[0], len(self.paths))

    @property
    def input_files(self) -> list[Path]:
        return self.paths

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image, alpha = self._first if index == 0 else read_image(path)
            if image.shape != (self.info.height, self.info.width, 3):
                raise InputError(
                    f"{path}: size {image.shape[1]}x{image.shape[0]} differs from the sequence's "
                    f"{self.info.width}x{self.info.height}"
                )
            yield Frame(index, image, index, self.info.time_base, alpha=alpha)


def is_printf_pattern(text: str) -> bool:
    """True for numbered-file patterns such as `frames/%04d.png`."""
    return bool(_PRINTF.search(text))


def is_sequence_pattern(text: str) -> bool:
    """True for printf patterns (`%04d`) and globs (`*`, `?`, `[...]`)."""
    return is_printf_pattern(text) or any(c in _GLOB_CHARS for c in Path(text).name)


def expand_sequence(pattern: str) -> tuple[list[Path], list[int]]:
    """The files of a printf pattern or glob, in frame order, with their frame numbers."""
    match = _PRINTF.search(pattern)
    if match:
        prefix, suffix = pattern[: match.start()], pattern[match.end() :]
        width = match.group(1)
        digits = rf"\d{{{int(width)},}}" if width else r"\d+"
        folder_name, head = os.path.split(prefix)  # "frames/" → ("frames", ""): Path() would drop the slash
        folder = Path(folder_name or ".")
        regex = re.compile(re.escape(head) + f"({digits})" + re.escape(suffix))
        if not folder.is_dir() or Path(suffix).parent != Path("."):
            return [], []
        found = sorted(
            (int(m.group(1)), folder / name)
            for name in os.listdir(folder)
            if (m := regex.fullmatch(name)) and (folder / name).is_file()
        )
    else:
        found = sorted(
            ((_number_in(p), Path(p)) for p in glob.glob(pattern) if Path(p).is_file()), key=lambda t: (t[0], str(t[1]))
        )
        found = [(i + 1, p) for i, (_, p) in enumerate(found)]
    return [p for _, p in found], [n for n, _ in found]


def _still_info(uri: str, kind: str, image: np.ndarray, count: int) -> SourceInfo:
    depth = 8 if image.dtype == np.uint8 else 16
    height, width = image.shape[:2]
    return SourceInfo(
        uri=uri,
        kind=kind,
        width=width,
        height=height,
        fps=SEQUENCE_FPS,
        time_base=1 / SEQUENCE_FPS,
        frame_count=count,
        bit_depth=depth,
        colour=resolve_colour(None, RANGE_FULL, None, None, height, None),  # images are full-range RGB
    )


def _number_in(path: str) -> int:
    digits = re.findall(r"\d+", Path(path).name)
    return int(digits[-1]) if digits else -1
