"""Live sources: webcams, network streams and files played like a camera, behind a watchdog.

    reader thread (one per connection) ──hand-over──▶ LiveSource.frames() (the watchdog)

FFmpeg and OpenCV can block for ever inside a read on a dead stream, and a blocked call
cannot be interrupted safely from outside. So every connection reads on its own thread and
the consumer keeps its own deadline: when no frame arrives in time (a stall), the stream
ends or fails, the connection is abandoned (it closes itself whenever its call returns;
FFmpeg's own timeout, set well beyond the watchdog's, makes sure it does) and a new one is
opened with exponential backoff. The first frame after a reconnect carries `gap=True`, so
recurrent model state does not carry over the hole.

Frames are stamped with the monotonic time the reader got them (`captured`); their pts is
that time since the first frame, so recordings have real timestamps, gaps included.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from streamdeblur.core.errors import InputError, StreamdeblurError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.frame import Frame
from streamdeblur.core.timing import StageTimer
from streamdeblur.io.colour import (
    ColourInfo,
    frame_bit_depth,
    frame_colour,
    frame_to_rgb,
    new_reformatter,
    resolve_colour,
    stream_colour,
)
from streamdeblur.io.sources.base import Source, SourceInfo

NETWORK_SCHEMES = {"rtsp", "rtsps", "rtmp", "http", "https", "udp"}
TIME_BASE = Fraction(1, 1000)  # capture-time pts in milliseconds (every muxer takes it)
BACKOFF_FIRST = 0.5  # seconds before the first reconnect attempt; doubles after each failure
BACKOFF_MAX = 10.0
HANDOVER = 2  # frames a reader may hold for the consumer before it drops the oldest
CONNECT_FACTOR = 2  # connecting (probe, first keyframe) may take this many watchdog timeouts
CLEANUP_FACTOR = 3  # FFmpeg's own timeout, in watchdog timeouts: only frees abandoned readers
PACING_SLACK = 0.2  # seconds a paced file may fall behind its clock before the clock restarts
DEFAULT_FPS = Fraction(30)  # for sources that do not say (most webcams say)
END_OF_STREAM = "end of stream"  # what a reader reports when its source ends cleanly
_WEBCAM_PATH = re.compile(r"/dev/(video\d+|v4l/.+)")
Captured = tuple[np.ndarray, float, float]  # RGB picture, monotonic capture time, seconds to decode


@dataclass(frozen=True)
class StreamOptions:
    """How to read a live source (`streamdeblur live` options)."""

    realtime: bool = True  # files: play at their native rate, like a camera
    rtsp_transport: str = "tcp"
    timeout: float = 5.0  # the watchdog: no frame for this long is a stall
    reconnect_attempts: int | None = None  # consecutive failed attempts before giving up; None: never


def source_kind(uri: str) -> str:
    """`webcam` (an index such as 0, or /dev/videoN), `network` (rtsp://, http(s)://, udp://, rtmp://)
    or `file`. An existing file wins over a webcam index of the same name."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in NETWORK_SCHEMES:
        return "network"
    if (uri.isdigit() and not Path(uri).exists()) or _WEBCAM_PATH.fullmatch(uri):
        return "webcam"
    return "file"


class Capture:
    """One open connection to a source; its calls block, so it lives on a reader thread."""

    fps: Fraction
    colour: ColourInfo | None  # None: decided from the first frame's size
    bit_depth: int = 8
    pix_fmt: str | None = None

    def images(self) -> Iterator[tuple[np.ndarray, float]]:  # pragma: no cover - interface
        """RGB pictures with the seconds spent decoding each (waiting for data not included)."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class AVCapture(Capture):
    """A network stream or a file through FFmpeg (PyAV); files can be paced to their own rate."""

    def __init__(self, uri: str, options: StreamOptions, paced: bool) -> None:
        self.paced = paced
        opts = {}
        if urlsplit(uri).scheme.lower() in ("rtsp", "rtsps"):
            # The SDP already describes the stream: probing further only delays the first frame.
            opts = {"rtsp_transport": options.rtsp_transport, "analyzeduration": "100000"}
        cleanup = CLEANUP_FACTOR * options.timeout
        try:
            self.container = av.open(uri, options=opts, timeout=(cleanup, cleanup))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot open ({ffmpeg_reason(err)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError("no video stream")
        self.stream = self.container.streams.video[0]
        self.fps = Fraction(self.stream.average_rate or self.stream.guessed_rate or DEFAULT_FPS)
        cc = self.stream.codec_context
        self.pix_fmt = cc.pix_fmt
        self.bit_depth = frame_bit_depth(cc.pix_fmt)
        self.colour = stream_colour(self.stream) if cc.height else None

    def images(self) -> Iterator[tuple[np.ndarray, float]]:
        start: float | None = None
        reformatter = new_reformatter()  # one for the stream: no swscale set-up and threads per frame
        for packet in self.container.demux(self.stream):
            began = time.perf_counter()
            for frame in packet.decode():
                if self.colour is None:  # the stream did not say before decoding: the first frame does
                    self.colour = frame_colour(frame)
                image = frame_to_rgb(frame, self.colour, self.bit_depth, reformatter)
                seconds = time.perf_counter() - began
                if self.paced and frame.time is not None:
                    now = time.monotonic()
                    if start is None or now - (start + frame.time) > PACING_SLACK:
                        start = now - frame.time  # (re)start the clock: a camera does not burst to catch up
                    time.sleep(max(0.0, start + frame.time - now))
                yield image, seconds
                began = time.perf_counter()

    def close(self) -> None:
        self.container.close()


class WebcamCapture(Capture):
    """A camera through OpenCV's V4L2 backend (PyAV's wheels have no v4l2 input)."""

    def __init__(self, device: str) -> None:
        if not device.isdigit() and not os.path.exists(device):
            raise InputError("no such camera device")
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        self.cap = cv2.VideoCapture(int(device) if device.isdigit() else device, backend)
        if not self.cap.isOpened():
            self.cap.release()
            raise InputError("cannot open the camera (not a video capture device, or busy)")
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest picture, not a queue of old ones
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else DEFAULT_FPS
        self.colour = None

    def images(self) -> Iterator[tuple[np.ndarray, float]]:
        while self.cap.grab():  # waits for the camera
            began = time.perf_counter()
            ok, bgr = self.cap.retrieve()  # decodes (MJPEG) and converts
            if not ok:
                return
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if self.colour is None:  # OpenCV gives RGB: tag the output the way players assume
                self.colour = resolve_colour(None, None, None, None, image.shape[0], None)
            yield image, time.perf_counter() - began

    def close(self) -> None:
        self.cap.release()


class Connection:
    """One attempt at reading the source, on its own daemon thread.

    Frames go into a small hand-over; when the consumer falls behind, the oldest is dropped
    (counted) so the reader never backs up into the network buffers. Never closed from
    outside: `abandon()` only asks the thread to stop, and it closes the capture itself.
    """

    def __init__(self, opener: Callable[[], Capture]) -> None:
        self.frames: queue.Queue[Captured] = queue.Queue(HANDOVER)
        self.capture: Capture | None = None
        self.error: str | None = None
        self.dropped = 0
        self.finished = threading.Event()
        self._abandoned = threading.Event()
        self._opener = opener
        threading.Thread(target=self._read, name="streamdeblur-reader", daemon=True).start()

    def abandon(self) -> None:
        self._abandoned.set()

    def _read(self) -> None:
        capture = None
        try:
            capture = self.capture = self._opener()
            for image, seconds in capture.images():
                if self._abandoned.is_set():
                    return
                self._offer((image, time.monotonic(), seconds))
        except StreamdeblurError as err:
            self.error = str(err)
        except Exception as err:  # noqa: BLE001 - any failure of a connection means: reconnect
            self.error = ffmpeg_reason(err) or type(err).__name__
        finally:
            if capture is not None:
                try:
                    capture.close()
                except Exception:  # noqa: BLE001 - a half-dead connection may not close cleanly
                    pass
            self.finished.set()

    def _offer(self, item: Captured) -> None:
        while True:
            try:
                self.frames.put_nowait(item)
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass


class LiveSource(Source):
    """A webcam, network stream or file as an endless (or, for files, paced) live source.

    Opening connects and waits for the first frame, so `info` is known and a wrong address
    fails at once with one line; frames that arrive before the run starts are skipped (a live
    run starts with the present), while a file is read again from its start. Once running,
    losses are repaired: `reconnects` counts the successful reconnections, `events` logs what
    happened (for the status panel), and `failure` says why the source gave up when
    `reconnect_attempts` ran out.
    """

    def __init__(self, uri: str, options: StreamOptions | None = None) -> None:
        self.uri = uri
        self.options = options or StreamOptions()
        self.kind = source_kind(uri)
        if self.kind == "file":
            self.path = Path(uri)
            if not self.path.is_file():
                raise InputError(f"{uri}: no such file, camera or stream address")
        self.halt = threading.Event()  # set by the pipeline's stop: no more waiting
        self.reconnects = 0
        self.events: list[str] = []
        self.failure: str | None = None
        self._index = 0
        self._last_pts = -1
        self._skipped = 0
        self.decode_timer = StageTimer()
        self._t0: float | None = None  # capture time of the first frame handed on: pts 0
        self._connection = self._connect()
        self._used: list[Connection] = []  # connections that delivered frames (their drops count)
        first = self._next(self._connection, first=True)
        if not isinstance(first, tuple):
            self._connection.abandon()
            raise InputError(f"{uri}: {first or 'interrupted'}")
        self._first: Captured | None = first
        if self.kind == "file":  # nothing is lost while the model loads: read it again when the run starts
            self._connection.abandon()
            self._first = None
        capture = self._connection.capture
        height, width = first[0].shape[:2]
        self.info = SourceInfo(
            uri=uri,
            kind="video",
            width=width,
            height=height,
            fps=capture.fps,
            time_base=TIME_BASE,
            frame_count=None,
            bit_depth=8 if first[0].dtype == np.uint8 else capture.bit_depth,
            colour=capture.colour,  # resolved by the time the first frame arrived
            pix_fmt=capture.pix_fmt,
        )

    @property
    def input_files(self) -> list[Path]:
        """A file played live is still read while the outputs are written: none may replace it."""
        return [self.path] if self.kind == "file" else []

    @property
    def dropped(self) -> int:
        """Frames the reader dropped because the pipeline had not taken the previous ones."""
        return self._skipped + sum(connection.dropped for connection in self._used)

    def _open(self) -> Capture:
        if self.kind == "webcam":
            return WebcamCapture(self.uri)
        return AVCapture(self.uri, self.options, paced=self.kind == "file" and self.options.realtime)

    def _connect(self) -> Connection:
        return Connection(self._open)

    def _next(self, connection: Connection, first: bool = False) -> Captured | str | None:
        """The next frame, or why there is none (a string), or None when the run is stopping.

        The first frame of a connection may take longer: FFmpeg probes the stream and the
        decoder waits for a keyframe.
        """
        timeout = self.options.timeout * (CONNECT_FACTOR if first else 1)
        deadline = time.monotonic() + timeout
        while not self.halt.is_set():
            try:
                return connection.frames.get(timeout=0.05)
            except queue.Empty:
                pass
            if connection.finished.is_set() and connection.frames.empty():
                return connection.error or END_OF_STREAM
            if time.monotonic() > deadline:
                return f"stalled: no frame for {timeout:g} s"
        return None

    def attach(self, stop: threading.Event, decode: StageTimer) -> None:
        """Join a pipeline: stop waiting when it stops, and time decoding into its stage timer."""
        self.halt, self.decode_timer = stop, decode

    def frames(self) -> Iterator[Frame]:
        if self._first is None:
            self._connection = self._connect()
            item = self._next(self._connection, first=True)
        else:
            item = self._newest(self._first)
        connection, gap = self._connection, False
        self._used.append(connection)
        try:
            while True:
                while isinstance(item, tuple):
                    yield self._frame(item, gap)
                    gap = False
                    item = self._next(connection)
                connection.abandon()
                if item is None or (self.kind == "file" and item == END_OF_STREAM):
                    return
                if self.kind == "file":
                    raise InputError(f"{self.uri}: {item}")
                self._log(f"source lost ({item}); reconnecting")
                connection, item = self._reconnect(item)
                if item is None:
                    return
                self._connection = connection
                self._used.append(connection)
                self.reconnects += 1
                gap = True
        finally:
            connection.abandon()

    def _reconnect(self, lost: str) -> tuple[Connection, Captured | None]:
        """Reconnect with exponential backoff; (connection, None) when stopping or giving up."""
        delay, attempt, connection = BACKOFF_FIRST, 0, self._connection
        while True:
            attempt += 1
            if self.halt.wait(delay):
                return connection, None
            connection = self._connect()
            item = self._next(connection, first=True)
            if isinstance(item, tuple):
                self._log(f"reconnected (attempt {attempt})")
                return connection, item
            connection.abandon()
            if item is None:
                return connection, None
            self._log(f"reconnect attempt {attempt} failed: {item}")
            limit = self.options.reconnect_attempts
            if limit is not None and attempt >= limit:
                self.failure = f"{self.uri}: lost ({lost}) and {attempt} reconnect attempts failed (last: {item})"
                return connection, None
            delay = min(2 * delay, BACKOFF_MAX)

    def _newest(self, item: Captured) -> Captured:
        """Skip what arrived while the model was loading: a live run starts with the present."""
        while True:
            try:
                item = self._connection.frames.get_nowait()
                self._skipped += 1
            except queue.Empty:
                return item

    def _frame(self, item: Captured, gap: bool) -> Frame:
        image, captured, seconds = item
        self.decode_timer.add(seconds)
        if self._t0 is None:
            self._t0 = captured
        info = self.info
        if image.shape[:2] != (info.height, info.width):
            # A camera that comes back at another size: outputs keep theirs.
            image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
        pts = max(round((captured - self._t0) / TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        frame = Frame(self._index, image, pts, TIME_BASE, captured=captured, gap=gap)
        self._index += 1
        return frame

    def _log(self, message: str) -> None:
        self.events.append(message)

    def close(self) -> None:
        self.halt.set()
        self._connection.abandon()
