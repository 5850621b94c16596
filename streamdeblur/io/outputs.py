"""Live outputs besides video files: RTSP/UDP publishing, raw frames on stdout, a preview window.

A live run can have several at once (`-o rec.mkv -o rtsp://host/path -o -`). Network and
stdout outputs can go away mid-run (a server restarts, the reading program exits); they then
set `failed` instead of raising, so the run stops gracefully and the recording is still
finished and playable. The preview window is drawn by the main thread (OpenCV's HighGUI is
not thread-safe): the sink only keeps the newest frame.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from streamdeblur.core.errors import OutputError, UsageError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.frame import Frame, to_rgb8
from streamdeblur.io.colour import new_reformatter
from streamdeblur.io.containers import H264, choose_pix_fmt, video_encoder
from streamdeblur.io.sinks import EncodeOptions, Sink, VideoFileSink, add_video_stream, check_output, encode_frame
from streamdeblur.io.sources import Source, SourceInfo

STREAM_FORMATS = {"rtsp": "rtsp", "rtsps": "rtsp", "udp": "mpegts"}  # URL scheme -> FFmpeg muxer
STDOUT = "-"


def output_kind(output: str) -> str:
    """`stdout`, `stream` (rtsp://, udp://) or `file`; other URL schemes are a usage error."""
    if output == STDOUT:
        return "stdout"
    scheme = urlsplit(output).scheme.lower()
    if scheme in STREAM_FORMATS:
        return "stream"
    if "://" in output:
        raise UsageError(f"-o {output}: unsupported output URL (use rtsp://, udp://, a video file or -)")
    return "file"


def check_outputs(outputs: list[str], source: Source, overwrite: bool, codec: str | None) -> None:
    """Refuse before any work: unknown URL schemes, repeated outputs, files that exist or cannot
    be written, an encoder a file's container cannot hold."""
    if len(set(outputs)) != len(outputs):
        raise UsageError("the same -o OUTPUT is given twice")
    for output in outputs:
        if output_kind(output) == "file":
            check_output(output, source, overwrite, codec)


def open_outputs(outputs: list[str], source: Source, options: EncodeOptions) -> list[Sink]:
    """A sink for every `-o` (checked by `check_outputs`); if one fails to open, those
    already open are discarded."""
    sinks: list[Sink] = []
    try:
        for output in outputs:
            kind = output_kind(output)
            if kind == "stdout":
                sinks.append(RawSink(source.info))
            elif kind == "stream":
                sinks.append(StreamSink(output, source.info, options))
            else:
                sinks.append(VideoFileSink(Path(output), source.info, options, None))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return sinks


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


class PreviewWindow(Sink):
    """An OpenCV window with the newest output frame; `s` shows input and output side by side,
    `q` or Esc ends the run. `show()` must be called from the main thread."""

    TITLE = "streamdeblur (s: side by side, q: quit)"

    def __init__(self) -> None:
        self.path = Path("preview")
        self.warnings = []
        self.quit = False
        self.side_by_side = False
        self._latest: Frame | None = None
        self._shown: Frame | None = None

    def write(self, frame: Frame) -> None:
        self._latest = frame

    def show(self) -> None:
        frame = self._latest
        if frame is not None and frame is not self._shown:
            image = frame.image
            if self.side_by_side and frame.original is not None:
                image = np.hstack([frame.original, image])
            cv2.imshow(self.TITLE, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self._shown = frame
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or (self._shown and cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1):
            self.quit = True
        elif key == ord("s"):
            self.side_by_side = not self.side_by_side
            self._shown = None

    def close(self) -> None:
        cv2.destroyAllWindows()

    def finish(self) -> None:
        pass  # the window belongs to the main thread: closed there by `close()`

    def abort(self) -> None:
        pass


def check_display() -> None:
    """Fail with one line, before anything starts, where no window can be opened.

    OpenCV's Qt backend aborts the whole process when it cannot reach the X server, so on
    Linux the display is checked first: DISPLAY must be set and its X server must accept a
    connection.
    """
    if not sys.platform.startswith("linux"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise OutputError("--preview needs a display: DISPLAY is not set (record with -o instead)")
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except (OSError, ValueError):
        raise OutputError(f"--preview needs a display: cannot connect to X display {display}") from None
