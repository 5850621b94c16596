"""Sinks: where processed frames go, each kind chosen here by path or URL.

    video.py    video files, the input's other streams remuxed
    images.py   an image or a numbered image sequence
    stream.py   rtsp:// and udp:// publishing (live)
    stdout.py   raw frames on stdout, `-` (live)
    preview.py  the preview window (live)

File mode writes one output of the input's kind (`check_file_output`, `open_file_sink`);
live mode any number of video files, streams and stdout (`check_live_outputs`,
`open_live_outputs`). Both refuse bad outputs before any work.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from streamdeblur.core.errors import OutputError, UsageError
from streamdeblur.core.files import create_parents, partial_path, remove_empty
from streamdeblur.io.containers import check_codec
from streamdeblur.io.sinks.base import DEFAULT_CRF, EncodeOptions, Sink
from streamdeblur.io.sinks.images import ImageSequenceSink, ImageSink, write_image
from streamdeblur.io.sinks.preview import PreviewWindow, check_display
from streamdeblur.io.sinks.stdout import STDOUT, RawSink
from streamdeblur.io.sinks.stream import STREAM_FORMATS, StreamSink
from streamdeblur.io.sinks.video import VideoFileSink
from streamdeblur.io.sources import IMAGE_EXTENSIONS, ImageSequenceSource, Source, VideoFileSource, is_printf_pattern

__all__ = [
    "DEFAULT_CRF",
    "EncodeOptions",
    "PreviewWindow",
    "Sink",
    "VideoFileSink",
    "check_display",
    "check_file_output",
    "check_live_outputs",
    "check_target",
    "input_paths",
    "open_file_sink",
    "open_live_outputs",
    "output_kind",
    "write_image",
]


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


def check_file_output(output: str, source: Source, overwrite: bool, codec: str | None = None) -> list[Path]:
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


def open_file_sink(output: str, source: Source, options: EncodeOptions) -> Sink:
    """The sink for OUTPUT; its kind follows the source's (video, image or sequence)."""
    if isinstance(source, ImageSequenceSource):
        return ImageSequenceSink(output, source.numbers)
    if source.info.kind == "image":
        return ImageSink(Path(output))
    remux = source if isinstance(source, VideoFileSource) else None
    return VideoFileSink(Path(output), source.info, options, remux)


def check_live_outputs(outputs: list[str], source: Source, overwrite: bool, codec: str | None) -> None:
    """Refuse before any work: unknown URL schemes, repeated outputs, files that exist or cannot
    be written, an encoder a file's container cannot hold."""
    if len(set(outputs)) != len(outputs):
        raise UsageError("the same -o OUTPUT is given twice")
    for output in outputs:
        if output_kind(output) == "file":
            check_file_output(output, source, overwrite, codec)


def open_live_outputs(outputs: list[str], source: Source, options: EncodeOptions) -> list[Sink]:
    """A sink for every `-o` (checked by `check_live_outputs`); if one fails to open, those
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
