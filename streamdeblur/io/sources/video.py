"""Video files through FFmpeg (PyAV), with the packets of their other streams for remuxing.

A video file source also hands the packets of its other streams (audio, subtitles, data) to
the sink, which remuxes them untouched. A damaged file is decoded as far as it goes.
"""

from __future__ import annotations

import collections
import os
import struct
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
from av.sidedata.sidedata import Type

from streamdeblur.core.errors import InputError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.files import check_readable
from streamdeblur.core.frame import Frame
from streamdeblur.io.colour import (
    frame_bit_depth,
    frame_to_rgb,
    new_reformatter,
    stream_colour,
)
from streamdeblur.io.damage import DamageWatch
from streamdeblur.io.sources.base import Source, SourceInfo

# FFmpeg demuxers that render text files as "video" (ANSI/binary art): never what a user means.
TEXT_ART_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}
# Containers whose packets carry no presentation time (only decode order), so frames are
# timed by their index at the constant rate these containers imply.
NO_PTS_FORMATS = {"avi"}


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
        check_readable(self.path)
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


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The display matrix a decoded frame carries (from its container), if any: FFmpeg's nine
    int32 values (libavutil/display.h; why they are kept: `io/orientation.py`)."""
    data = frame.side_data.get(Type.DISPLAYMATRIX)
    return struct.unpack("=9i", bytes(data)) if data is not None else None


def _unopenable(path: Path, err: Exception) -> str:
    """Why FFmpeg could not open `path`, in the user's terms."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":  # an MP4/MOV whose index (moov, written last) never made it to disk
        return f"MP4/MOV without its index: the file is truncated or was not finished ({ffmpeg_reason(err)})"
    return f"not a video or image file ({ffmpeg_reason(err)})"
