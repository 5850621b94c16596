"""Sources: one `open_source(uri)` for every kind of input, chosen here by URI and path.

    video.py    video files (FFmpeg), their audio and subtitles kept for remuxing
    images.py   still images and numbered image sequences
    live.py     webcams, network streams and files played like a camera, behind a watchdog

A source yields `Frame`s with the timing the input had and describes itself with a
`SourceInfo` (base.py: size, rate, colour, how many frames to expect).
"""

from __future__ import annotations

import os
from pathlib import Path

from streamdeblur.core.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from streamdeblur.io.sources.base import Source, SourceInfo
from streamdeblur.io.sources.images import ImageSequenceSource, ImageSource, is_printf_pattern, is_sequence_pattern
from streamdeblur.io.sources.live import LiveSource, StreamOptions, source_kind
from streamdeblur.io.sources.video import VideoFileSource

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageSequenceSource",
    "ImageSource",
    "LiveSource",
    "Source",
    "SourceInfo",
    "StreamOptions",
    "VideoFileSource",
    "is_printf_pattern",
    "open_source",
]


def open_source(uri: str | os.PathLike, live: StreamOptions | None = None) -> Source:
    """Open any supported input: an image sequence pattern, an image file or a video file;
    a webcam or network stream (live.py); with `live` options, a file played as a live source.

    Images are recognised by extension and content; anything else is probed by FFmpeg, so a
    video with an unusual extension still opens.
    """
    text = str(uri)
    if live is not None or source_kind(text) != "file":
        return LiveSource(text, live)
    path = Path(text)
    if not path.is_file() and is_sequence_pattern(text):  # an existing "clip [1080p].mp4" is a file
        return ImageSequenceSource(text)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path)
    return VideoFileSource(path)
