"""Video files (PyAV): the input's audio, subtitles and data remuxed untouched, colours kept."""

from __future__ import annotations

from pathlib import Path

import av
from av.video.reformatter import VideoReformatter

from streamdeblur.core.errors import OutputError
from streamdeblur.core.ffmpeg import ffmpeg_reason
from streamdeblur.core.files import partial_path, publish
from streamdeblur.core.frame import Frame
from streamdeblur.io.colour import ColourInfo, new_reformatter, rgb_to_frame, tag_colour
from streamdeblur.io.containers import (
    choose_encoder,
    choose_pix_fmt,
    encoder_options,
    loses_depth,
    muxer_for,
)
from streamdeblur.io.sinks.base import EncodeOptions, Sink
from streamdeblur.io.sources import (
    SourceInfo,
    VideoFileSource,
)


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
