"""One `open_source(uri)` for every kind of input: video files, images, image sequences.

A source yields `Frame`s with the timing the input had and describes itself with a
`SourceInfo` (size, rate, colour, how many frames to expect). A video file source also
hands the packets of its other streams (audio, subtitles, data) to the sink, which remuxes
them untouched.
"""

from __future__ import annotations

import collections
import glob
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import av
import cv2
import numpy as np

from streamdeblur.core.errors import InputError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.frame import Frame
from streamdeblur.core.timing import StageTimer
from streamdeblur.io.colour import (
    RANGE_FULL,
    ColourInfo,
    frame_bit_depth,
    frame_to_rgb,
    new_reformatter,
    resolve_colour,
    stream_colour,
)
from streamdeblur.io.damage import Damage, DamageWatch
from streamdeblur.io.orientation import display_matrix, exif_orientation, upright

if TYPE_CHECKING:
    from streamdeblur.io.streams import StreamOptions

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}
# Extensions that name videos (batch still probes every other file with FFmpeg).
VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".flv", ".wmv", ".asf", ".3gp", ".ogv", ".mxf", ".vob", ".dv", ".y4m", ".gif",
}  # fmt: skip
# FFmpeg demuxers that render text files as "video" (ANSI/binary art): never what a user means.
TEXT_ART_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}
# Containers whose packets carry no presentation time (only decode order), so frames are
# timed by their index at the constant rate these containers imply.
NO_PTS_FORMATS = {"avi"}
SEQUENCE_FPS = Fraction(25)  # image sequences carry no rate; FFmpeg's image2 default

_PRINTF = re.compile(r"%0?(\d*)d")
_GLOB_CHARS = set("*?[")


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


class VideoFileSource(Source):
    """A video file decoded with PyAV (FFmpeg); other streams are queued for remuxing.

    `passthrough` holds the input's audio, subtitle and data streams. A sink that remuxes them
    calls `keep_packets()`; from then on their packets are put on `packets` in demux order as
    decoding goes, so the sink can mux them while the video is still being processed. Memory
    stays bounded because decoding runs only a few frames ahead of encoding; without such a
    sink the packets are read (for the damage check) but not kept. `read_to_end` tells the
    sink whether the packets it got are all there are, or only those read before a stop.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        _check_readable(self.path)
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}: {_unopenable(self.path, err)}") from None
        if self.container.format.name in TEXT_ART_FORMATS:
            self.container.close()
            raise InputError(f"{self.path}: not a video or image file (looks like text)")
        videos = [s for s in self.container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            self.container.close()
            raise InputError(f"{self.path}: no video stream")
        self.stream = videos[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        if not cc.width or not cc.height:
            self.container.close()
            raise InputError(f"{self.path}: the video stream has no picture size (unsupported codec?)")
        self.passthrough = [
            s
            for s in self.container.streams
            if s is not self.stream and s.type in ("audio", "subtitle", "data") and s.codec_context is not None
        ]
        self.packets: collections.deque[av.Packet] | None = None
        self.read_to_end = False
        fps = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        count = self.stream.frames or None
        if count is None and self.stream.duration and self.stream.time_base:
            count = round(self.stream.duration * self.stream.time_base * fps)
        self.info = SourceInfo(
            uri=str(self.path),
            kind="video",
            width=cc.width,
            height=cc.height,
            fps=Fraction(fps),
            time_base=Fraction(self.stream.time_base or Fraction(1, 90000)),
            frame_count=count,
            bit_depth=frame_bit_depth(cc.pix_fmt),
            colour=stream_colour(self.stream),
            pix_fmt=cc.pix_fmt,
        )

    def keep_packets(self) -> collections.deque[av.Packet]:
        """Start queueing the other streams' packets for a sink that remuxes them."""
        if self.packets is None:
            self.packets = collections.deque()
        return self.packets

    @property
    def input_files(self) -> list[Path]:
        return [self.path]

    @property
    def video_metadata(self) -> dict[str, str]:
        """The video stream's tags (language, timecode, ...) for the output stream."""
        return dict(self.stream.metadata)

    @property
    def container_metadata(self) -> dict[str, str]:
        return dict(self.container.metadata)

    def frames(self) -> Iterator[Frame]:
        """Every frame that decodes, in display order. Damage does not stop decoding: a packet
        the decoder rejects is skipped, a demuxer error ends the input there (the decoder's
        buffered frames still come out), and `damage` says afterwards what was wrong."""
        info = self.info
        step = max(1, round(1 / (info.fps * info.time_base)))
        index = 0
        last_pts: int | None = None
        by_index = self.container.format.name in NO_PTS_FORMATS
        reformatter = new_reformatter()  # one for the stream: no swscale set-up and threads per frame
        watch = DamageWatch(
            start=(self.container.start_time or 0) / av.time_base,
            duration=(self.container.duration or 0) / av.time_base,
            slack=2 / float(info.fps) + 0.01,
        )
        for packet in self._video_packets(watch):
            try:
                decoded_frames = watch.frames(self.stream.decode(packet))
            except av.FFmpegError:
                watch.rejected_packets += 1
                continue
            for decoded in decoded_frames:
                pts = self._presentation_pts(decoded.pts, index, step, last_pts, by_index)
                last_pts = pts
                image = frame_to_rgb(decoded, info.colour, info.bit_depth, reformatter)
                yield Frame(index, image, pts, info.time_base, display_matrix=display_matrix(decoded))
                index += 1
        self.read_to_end = True
        self.damage = watch.verdict(index, info.frame_count)
        if index == 0:
            reason = f" ({'; '.join(self.damage.problems)})" if self.damage else ""
            raise InputError(f"{self.path}: the video stream has no decodable frames{reason}")

    def _video_packets(self, watch: DamageWatch) -> Iterator[av.Packet | None]:
        """The video packets in file order (the other streams' go to `packets` for the sink),
        then the end of stream (PyAV's empty packets; None after a demuxer error)."""
        try:
            for packet in self.container.demux([self.stream, *self.passthrough]):
                watch.packet(packet)
                if packet.stream is self.stream:
                    yield packet
                elif self.packets is not None and packet.dts is not None:  # flush packets have no dts
                    self.packets.append(packet)
        except av.FFmpegError as err:
            watch.read_error = ffmpeg_reason(err)
            yield None

    @staticmethod
    def _presentation_pts(pts: int | None, index: int, step: int, last: int | None, by_index: bool) -> int:
        """The frame's pts, made trustworthy: decoders emit frames in display order, so

        - containers without presentation timestamps (AVI: its demuxer invents them from the
          decode order, which B-frames scramble) and frames without a pts get the constant-rate
          timeline `index * step`;
        - a pts that does not increase (also such a stand-in among real ones) is nudged just
          past the previous one, because encoders reject non-increasing timestamps.
        """
        if pts is None or by_index:
            pts = index * step
        return pts if last is None or pts > last else last + 1

    def close(self) -> None:
        self.container.close()


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


def open_source(uri: str | os.PathLike, live: StreamOptions | None = None) -> Source:
    """Open any supported input: an image sequence pattern, an image file or a video file;
    a webcam or network stream (`io/streams.py`); with `live` options, a file played as a live source.

    Images are recognised by extension and content; anything else is probed by FFmpeg, so a
    video with an unusual extension still opens.
    """
    from streamdeblur.io.streams import LiveSource, source_kind  # it builds on this module

    text = str(uri)
    if live is not None or source_kind(text) != "file":
        return LiveSource(text, live)
    path = Path(text)
    if not path.is_file() and is_sequence_pattern(text):  # an existing "clip [1080p].mp4" is a file
        return ImageSequenceSource(text)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path)
    return VideoFileSource(path)


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


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB (uint8 or uint16) and the alpha channel if the image has one, turned upright as its
    EXIF orientation says (`io/orientation.py`: why outputs carry no orientation tag)."""
    _check_readable(path)
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


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (use `streamdeblur batch` for folders)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")


def _unopenable(path: Path, err: Exception) -> str:
    """Why FFmpeg could not open `path`, in the user's terms."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":  # an MP4/MOV whose index (moov, written last) never made it to disk
        return f"MP4/MOV without its index: the file is truncated or was not finished ({ffmpeg_reason(err)})"
    return f"not a video or image file ({ffmpeg_reason(err)})"
