"""Sinks write processed frames: a video file (PyAV), an image, or a numbered image sequence.

Whatever the kind, output is written under a temporary name and renamed when complete, so a
failed run never leaves a half file that looks done and never damages an existing file. A
sink that is *finished* (normal end or Ctrl-C) is a complete, playable file; a sink that is
*aborted* (an error) leaves nothing behind. Missing folders of an output are created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from streamdeblur.core.errors import OutputError, UsageError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.files import atomic_write, create_parents, partial_path, publish, remove_empty
from streamdeblur.core.frame import Frame, to_rgb8
from streamdeblur.io.colour import ColourInfo, new_reformatter, rgb_to_frame, tag_colour
from streamdeblur.io.containers import (
    check_codec,
    choose_encoder,
    choose_pix_fmt,
    encoder_options,
    loses_depth,
    muxer_for,
)
from streamdeblur.io.sources import (
    IMAGE_EXTENSIONS,
    ImageSequenceSource,
    Source,
    SourceInfo,
    VideoFileSource,
    is_printf_pattern,
)

DEFAULT_CRF = 18
_NO_16BIT = {".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".jp2"}


@dataclass(frozen=True)
class EncodeOptions:
    codec: str | None = None  # None: the output container's default (`io/containers.py`)
    crf: int = DEFAULT_CRF


class Sink:
    """Base class: `write(frame)` each frame, then `finish()` (complete) or `abort()` (discard)."""

    path: Path
    warnings: list[str]
    failed: str | None = None  # set by outputs that can go away mid-run (a stream receiver)

    def describe(self) -> str:
        """What the status line calls this output."""
        return str(self.path)

    def write(self, frame: Frame) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class VideoFileSink(Sink):
    """Encodes the video with PyAV and remuxes the source's other streams untouched.

    The output video stream takes the input's time base and each frame keeps its pts, so
    frame count, rate and per-frame timestamps equal the input's (VFR included). Colour
    matrix/range are those of the input; bit depth and chroma follow it as far as the codec
    allows (odd sizes cannot be 4:2:0, so they are encoded 4:4:4). The display matrix of the
    first frame goes to the stream, so a rotated phone video plays as it did.

    The other streams' packets are muxed up to the video frame just written, so a run that
    stops early (Ctrl-C) ends its audio with its last video frame; once the source was read to
    its end, the rest follows (audio may outlast the video).
    """

    def __init__(self, path: Path, info: SourceInfo, options: EncodeOptions, remux: VideoFileSource | None) -> None:
        self.path = path
        self.info = info
        self.remux = remux
        self.warnings = []
        self._temp = partial_path(path)
        self._video_end: float | None = None  # seconds: where the last frame written ends
        self._reformatter = new_reformatter()  # one for the stream: no swscale set-up and threads per frame
        codec = choose_encoder(options.codec, path, info)
        self.pix_fmt = choose_pix_fmt(codec, info)
        if loses_depth(self.pix_fmt, info):
            self.warnings.append(f"{codec.name} cannot encode {info.bit_depth}-bit video: written as 8-bit")
        try:
            self.container = av.open(str(self._temp), "w", format=muxer_for(path))
        except (av.FFmpegError, ValueError) as err:
            raise OutputError(f"{path}: cannot write ({ffmpeg_reason(err)})") from None
        try:
            self.stream = self._add_video_stream(codec, options)
            self._streams = self._add_passthrough_streams()
            if remux is not None:
                remux.keep_packets()
                self.container.metadata.update(remux.container_metadata)
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(self, codec: av.codec.Codec, options: EncodeOptions) -> av.video.stream.VideoStream:
        opts = encoder_options(codec, options.crf)
        stream = add_video_stream(self.container, codec, self.info, self.pix_fmt, opts)
        stream.codec_context.thread_type = "AUTO"
        if self.remux is not None:
            # Tags such as language and timecode; the mov muxer rebuilds a timecode track from it.
            stream.metadata.update(
                {k: v for k, v in self.remux.video_metadata.items() if k not in ("encoder", "handler_name")}
            )
        return stream

    def _add_passthrough_streams(self) -> dict[int, av.stream.Stream]:
        """Output streams for the input's audio/subtitle/data, keyed by input stream index."""
        if self.remux is None:
            return {}
        supported = self.container.supported_codecs
        streams = {}
        for source_stream in self.remux.passthrough:
            name = source_stream.codec_context.name
            if name not in supported:
                self.warnings.append(
                    f"{source_stream.type} stream #{source_stream.index} ({name}) cannot be stored in "
                    f"{self.path.suffix} and is left out; use .mkv to keep it"
                )
                continue
            streams[source_stream.index] = self.container.add_stream_from_template(source_stream)
        return streams

    def write(self, frame: Frame) -> None:
        if self._video_end is None and frame.display_matrix is not None:
            self.stream.set_display_matrix(frame.display_matrix)  # before anything is muxed: it goes in the header
        self._video_end = frame.time + 1 / float(self.info.fps)
        try:
            self._mux_passthrough(self._video_end)
            self.container.mux(encode_frame(self.stream, frame, self.pix_fmt, self.info.colour, self._reformatter))
        except av.FFmpegError as err:
            raise OutputError(f"{self.path}: writing failed ({ffmpeg_reason(err)})") from None

    def _mux_passthrough(self, until: float | None) -> None:
        """Mux the other streams' packets demuxed so far (they arrive in file order) that start
        before `until` (seconds; None: all of them)."""
        if self.remux is None:
            return
        queue = self.remux.keep_packets()
        while queue:
            packet = queue[0]
            if until is not None and (packet.pts if packet.pts is not None else packet.dts) * packet.time_base >= until:
                return
            queue.popleft()
            out = self._streams.get(packet.stream.index)
            if out is not None:
                packet.stream = out
                self.container.mux(packet)

    def finish(self) -> None:
        """Flush the encoder, mux the packets still due, close, and move into place."""
        try:
            self.container.mux(self.stream.encode(None))
            if self.remux is not None and self.remux.read_to_end:
                self._mux_passthrough(None)
            self.container.close()
        except av.FFmpegError as err:
            self.abort()
            raise OutputError(f"{self.path}: writing failed ({ffmpeg_reason(err)})") from None
        publish(self._temp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass
        self._temp.unlink(missing_ok=True)


class ImageSink(Sink):
    """One image; 16-bit sources stay 16-bit where the format allows, alpha is re-attached."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings = []
        self._frame: Frame | None = None

    def write(self, frame: Frame) -> None:
        self._frame = frame

    def finish(self) -> None:
        if self._frame is not None:
            write_image(self.path, self._frame)

    def abort(self) -> None:
        self._frame = None


class ImageSequenceSink(Sink):
    """Numbered images from a printf pattern, numbered like the input's files.

    Like the other sinks, every file is written under its `.partial` name and renamed when
    the run finishes, so a failed run leaves nothing and replaces nothing.
    """

    def __init__(self, pattern: str, numbers: list[int]) -> None:
        self.pattern = pattern
        self.path = Path(pattern)
        self.numbers = numbers
        self.warnings = []
        self._written: list[Path] = []

    def write(self, frame: Frame) -> None:
        target = Path(self.pattern % self.numbers[frame.index])
        write_image(partial_path(target), frame)
        self._written.append(target)

    def finish(self) -> None:
        for target in self._written:
            publish(partial_path(target), target)

    def abort(self) -> None:
        for target in self._written:
            partial_path(target).unlink(missing_ok=True)


def write_image(path: Path, frame: Frame) -> None:
    """Write atomically (`atomic_write`); RGB to BGR for OpenCV, alpha appended."""
    image = to_rgb8(frame.image) if path.suffix.lower() in _NO_16BIT else frame.image
    bgr = image[:, :, ::-1]
    if frame.alpha is not None:
        alpha = frame.alpha
        if alpha.dtype != bgr.dtype:
            alpha = (alpha.astype(np.uint16) * 257) if bgr.dtype == np.uint16 else to_rgb8(alpha)
        bgr = np.dstack([bgr, alpha])

    def write(temp: Path) -> None:
        try:
            ok = cv2.imwrite(str(temp), np.ascontiguousarray(bgr))
        except cv2.error as err:
            raise OutputError(
                f"{path}: cannot write image ({err.msg.strip() if hasattr(err, 'msg') else err})"
            ) from None
        if not ok:
            raise OutputError(f"{path}: cannot write image")

    atomic_write(path, write)


def add_video_stream(
    container: av.container.OutputContainer,
    codec: av.codec.Codec,
    info: SourceInfo,
    pix_fmt: str,
    options: dict[str, str],
) -> av.video.stream.VideoStream:
    """An output video stream with the source's size, rate, time base and colour tags."""
    stream = container.add_stream(codec.name, rate=info.fps)
    stream.width, stream.height, stream.pix_fmt = info.width, info.height, pix_fmt
    stream.time_base = info.time_base
    cc = stream.codec_context
    cc.time_base, cc.framerate = info.time_base, info.fps
    tag_colour(cc, info.colour)
    cc.options = options
    return stream


def encode_frame(
    stream: av.video.stream.VideoStream,
    frame: Frame,
    pix_fmt: str,
    colour: ColourInfo,
    reformatter: VideoReformatter | None = None,
) -> list:
    """The packets of one frame, converted to `pix_fmt` with `colour` (by the stream's own
    `reformatter`: `colour.new_reformatter`) and keeping its pts."""
    video_frame = rgb_to_frame(frame.image, pix_fmt, colour, reformatter)
    video_frame.pts, video_frame.time_base = frame.pts, frame.time_base
    return stream.encode(video_frame)


def check_target(target: Path, overwrite: bool) -> list[Path]:
    """A file may be written at `target`: it does not exist (or may be replaced). Missing folders
    above it are created and returned, for `remove_empty` if the file never comes."""
    if target.is_dir():
        raise OutputError(f"{target}: is a directory")
    if target.exists() and not overwrite:
        raise OutputError(f"{target}: already exists (use --overwrite to replace it)")
    try:
        return create_parents(target)
    except OSError as err:
        raise OutputError(f"{target}: cannot create folder {target.parent} ({err.strerror})") from None


def input_paths(*sources: Source) -> set[Path]:
    """The resolved files `sources` read: an output must replace none of them."""
    return {path.resolve() for source in sources for path in source.input_files}


def check_output(output: str, source: Source, overwrite: bool, codec: str | None = None) -> list[Path]:
    """Refuse before any work: wrong kind for the input, a format or `codec` the tool cannot
    write, an existing file, an unwritable folder. Returns the folders created for OUTPUT."""
    kind = source.info.kind
    if isinstance(source, ImageSequenceSource):
        try:
            targets = [Path(output % n) for n in source.numbers]
        except (TypeError, ValueError):
            targets = []
        if not is_printf_pattern(output) or not targets:
            raise UsageError("INPUT is an image sequence: OUTPUT must be a printf pattern such as out/%04d.png")
        suffix = Path(output).suffix.lower()
        if suffix not in IMAGE_EXTENSIONS:
            raise UsageError(f"unsupported image format {suffix or '(none)'} for OUTPUT")
    else:
        targets = [Path(output)]
        suffix = targets[0].suffix.lower()
        if kind == "image" and suffix not in IMAGE_EXTENSIONS:
            raise UsageError(f"INPUT is an image: OUTPUT must be an image file ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        if kind == "video" and (suffix in IMAGE_EXTENSIONS or not suffix):
            raise UsageError("INPUT is a video: OUTPUT must be a video file such as out.mp4 or out.mkv")
        if kind == "video":
            check_codec(codec, targets[0])
    inputs = input_paths(source)
    for target in targets:
        if target.resolve() in inputs:
            raise OutputError(f"{target}: OUTPUT would overwrite INPUT")
    created = [folder for target in targets for folder in check_target(target, overwrite)]
    folder = targets[0].parent
    probe = partial_path(targets[0])
    try:  # a real write: permissions, read-only mounts and pseudo file systems all show here
        probe.touch()
        probe.unlink()
    except OSError as err:
        remove_empty(created)
        raise OutputError(f"{targets[0]}: cannot write in {folder} ({err.strerror})") from None
    return created


def open_sink(output: str, source: Source, options: EncodeOptions) -> Sink:
    """The sink for OUTPUT; its kind follows the source's (video, image or sequence)."""
    if isinstance(source, ImageSequenceSource):
        return ImageSequenceSink(output, source.numbers)
    if source.info.kind == "image":
        return ImageSink(Path(output))
    remux = source if isinstance(source, VideoFileSource) else None
    return VideoFileSink(Path(output), source.info, options, remux)
