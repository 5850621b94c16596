"""The unit that flows through the pipeline: one RGB image with its timing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    """One picture and where it sits in time.

    `image` is H x W x 3 RGB, uint8 (or uint16 for 10/12-bit sources). `pts` is in units of
    `time_base`, exactly as the container had it, so the encoder can give the output the
    input's timing (VFR included). `alpha` carries an image's alpha channel through untouched.
    `gap` marks the first frame after a live source lost frames (reconnect, stall): recurrent
    state must not carry over it. `original` keeps the unprocessed picture where a live preview
    shows both side by side. `display_matrix` is how the container said to turn the picture
    for display (`io/orientation.py`); the picture itself stays as stored.
    """

    index: int
    image: np.ndarray
    pts: int
    time_base: Fraction
    alpha: np.ndarray | None = None
    captured: float = field(default_factory=time.monotonic)
    blur_score: float | None = None
    processed: bool = False
    scene_cut: bool = False
    gap: bool = False
    original: np.ndarray | None = None
    display_matrix: tuple[int, ...] | None = None

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """8-bit levels of an 8- or 16-bit image (16-bit keeps its top byte)."""
    return image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
