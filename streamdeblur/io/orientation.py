"""Which way up a picture is shown: the display matrix of videos, the EXIF orientation of images.

Videos: a phone stores frames as the sensor saw them, and a display matrix in the container
tells players how to turn them. Frames are processed as stored and the output stream gets
the same matrix, so the output plays the way the input did: any angle, flips included. The
matrix is read with the frames, by PyAV (`io/sources/video.py`); this module needs no PyAV,
so that photos are read without it (`io/stills.py`).

Images: the EXIF orientation is applied when the image is read and the output is written
without one. OpenCV writes no EXIF into most formats (and PNG viewers mostly ignore it), so
upright pixels are the only way the output looks like the input in every viewer, and a file
without the tag can never be turned twice.
"""

from __future__ import annotations

import struct
from typing import Callable

import numpy as np

_EXIF_ORIENTATION = 0x0112
_SHORT = 3
# EXIF orientation -> the turn that makes the stored picture upright (rows, columns first).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a),
}


def exif_orientation(exif: bytes) -> int:
    """The Orientation tag (1-8) of an EXIF block (a TIFF structure); 1 when absent or unreadable."""
    exif = exif.removeprefix(b"Exif\x00\x00")
    order = {b"II": "<", b"MM": ">"}.get(exif[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind, _, value = struct.unpack_from(order + "HHIH", exif, entry)
            if tag == _EXIF_ORIENTATION and kind == _SHORT:
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """`image` (H x W or H x W x C) turned as its EXIF `orientation` says it is shown."""
    turn = _UPRIGHT.get(orientation)
    return np.ascontiguousarray(turn(image)) if turn else image
