"""Publishing to the network: RTSP (to a server) and MPEG-TS over UDP."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import av

from streamdeblur.core.errors import OutputError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.frame import Frame
from streamdeblur.io.colour import new_reformatter
from streamdeblur.io.containers import (
    H264,
    choose_pix_fmt,
    video_encoder,
)
from streamdeblur.io.sinks.base import EncodeOptions, Sink
from streamdeblur.io.sinks.video import add_video_stream, encode_frame
from streamdeblur.io.sources import (
    SourceInfo,
)

STREAM_FORMATS = {"rtsp": "rtsp", "rtsps": "rtsp", "udp": "mpegts"}  # URL scheme -> FFmpeg muxer


class StreamSink(Sink):
    """Publishes to an RTSP server (ANNOUNCE/RECORD) or sends MPEG-TS over UDP, with PyAV.

    The encoder is tuned for latency (no B-frames, no look-ahead, a keyframe every second so
    a viewer who joins late gets a picture quickly). Connecting happens here, so a server that
    refuses is reported before the run starts.
    """

    def __init__(self, url: str, info: SourceInfo, options: EncodeOptions) -> None:
        self.path = Path(url)
        self.url = url
        self.warnings = []
        scheme = urlsplit(url).scheme.lower()
        codec = video_encoder(options.codec or H264)
        self.pix_fmt = choose_pix_fmt(codec, info)
        self.colour = info.colour
        self._reformatter = new_reformatter()  # one for the stream: no swscale set-up and threads per frame
        container_options = {"rtsp_transport": "tcp"} if STREAM_FORMATS[scheme] == "rtsp" else {}
        opts = {"crf": str(options.crf), "g": str(max(1, round(info.fps)))}
        if codec.name in ("libx264", "libx265"):
            opts.update(preset="veryfast", tune="zerolatency")
        try:
            self.container = av.open(url, "w", format=STREAM_FORMATS[scheme], options=container_options)
        except (av.FFmpegError, OSError) as err:
            raise OutputError(f"{url}: cannot publish ({ffmpeg_reason(err)})") from None
        try:
            self.stream = add_video_stream(self.container, codec, info, self.pix_fmt, opts)
            self.container.start_encoding()  # connects (RTSP: ANNOUNCE + RECORD) now, not at the first frame
        except (av.FFmpegError, OSError) as err:
            self.container.close()
            raise OutputError(f"{url}: cannot publish ({ffmpeg_reason(err)})") from None

    def describe(self) -> str:
        return self.url

    def write(self, frame: Frame) -> None:
        if self.failed:
            return
        try:
            self.container.mux(encode_frame(self.stream, frame, self.pix_fmt, self.colour, self._reformatter))
        except (av.FFmpegError, OSError) as err:
            self.failed = f"{self.url}: publishing failed ({ffmpeg_reason(err)})"

    def finish(self) -> None:
        # The receiver may be gone: nothing left to send then, but the connection is closed all the same.
        with contextlib.suppress(av.FFmpegError, OSError):
            if not self.failed:
                self.container.mux(self.stream.encode(None))
        with contextlib.suppress(av.FFmpegError, OSError):
            self.container.close()

    def abort(self) -> None:
        self.finish()
