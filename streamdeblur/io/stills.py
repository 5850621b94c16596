"""Still images read with OpenCV alone: RGB, upright, 8 or 16 bits.

Kept apart from the sources (which describe colour with PyAV's tables) so that training on
photos runs where FFmpeg is not installed (a lent GPU machine gets no PyAV wheel to spare).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamdeblur.core.errors import InputError
from streamdeblur.core.files import check_readable
from streamdeblur.io.orientation import exif_orientation, upright


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (uint8 or uint16) and the alpha channel if the image has one, turned upright as its
    EXIF orientation says (`io/orientation.py`: why outputs carry no orientation tag)."""
    check_readable(path)
    raw, kinds, blocks = cv2.imreadWithMetadata(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: not a readable image")
    for kind, block in zip(kinds, blocks, strict=True):
        if kind == cv2.IMAGE_METADATA_EXIF:
            raw = upright(raw, exif_orientation(block.tobytes()))
    if raw.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: {raw.dtype} images are not supported (8- or 16-bit only)")
    if raw.ndim == 2:
        return np.repeat(raw[:, :, None], 3, axis=2), None
    alpha = raw[:, :, 3].copy() if raw.shape[2] == 4 else None
    return np.ascontiguousarray(raw[:, :, 2::-1]), alpha
