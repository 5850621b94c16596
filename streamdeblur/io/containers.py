"""The video containers the tool writes, and the encoder and pixel format each output gets.

The container decides the default codec: H.264 plays wherever MP4, MOV and Matroska do, but
WebM holds only VP8, VP9 and AV1. Among a container's default encoders the first that keeps
the source's bit depth wins (the bundled libvpx-vp9 is 8-bit only; SVT-AV1 encodes 10-bit),
so 10-bit input stays 10-bit wherever an encoder can; an explicit `--codec` is checked
against the container before any work.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path

import av

from streamdeblur.core.errors import OutputError, UsageError
from streamdeblur.io.colour import frame_bit_depth
from streamdeblur.io.sources import SourceInfo

# Output extension -> FFmpeg muxer. Other containers (AVI, MPEG-TS, ...) lose timestamps or
# streams; batch writes such inputs as Matroska, which holds every codec.
VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
H264 = "libx264"
DEFAULT_ENCODERS = {"webm": ("libvpx-vp9", "libsvtav1", "libaom-av1")}  # every other container: H.264
# Options besides `crf`: x264/x265's default speed, and constant quality for libvpx/libaom
# (without `b=0` their crf is only a cap under a default bitrate).
ENCODER_OPTIONS = {
    "libx264": {"preset": "medium"},
    "libx265": {"preset": "medium"},
    "libvpx-vp9": {"b": "0", "row-mt": "1", "cpu-used": "4"},
    "libaom-av1": {"b": "0", "cpu-used": "6"},
}
# SVT-AV1 prints its whole configuration on stderr; only its errors belong there.
os.environ.setdefault("SVT_LOG", "1")


def muxer_for(path: Path) -> str:
    """The FFmpeg muxer for a video OUTPUT, or a usage error naming the formats there are."""
    muxer = VIDEO_CONTAINERS.get(path.suffix.lower())
    if muxer is None:
        known = ", ".join(VIDEO_CONTAINERS)
        raise UsageError(f"{path}: unsupported video format {path.suffix or '(none)'} (use {known})")
    return muxer


def video_encoder(name: str) -> av.codec.Codec:
    """FFmpeg's video encoder `name`, or a usage error naming what is wrong."""
    try:
        codec = av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        raise UsageError(f"unknown encoder {name!r} (try libx264, libx265, libvpx-vp9, libsvtav1)") from None
    if codec.type != "video":
        raise UsageError(f"{name!r} is not a video encoder")
    return codec


@lru_cache(maxsize=None)
def can_hold(muxer: str, codec: str) -> bool:
    """Whether the container `muxer` can store what the encoder `codec` writes."""
    with av.open(io.BytesIO(), "w", format=muxer) as container:
        return video_encoder(codec).name in container.supported_codecs


def check_codec(codec: str | None, path: Path) -> str:
    """The muxer for `path`; usage errors before any work for an unknown format or an encoder
    the container cannot hold."""
    muxer = muxer_for(path)
    if codec is not None and not can_hold(muxer, codec):
        raise UsageError(f"--codec {codec}: {path.suffix} cannot hold it (leave --codec out for the default)")
    return muxer


def choose_encoder(codec: str | None, path: Path, info: SourceInfo) -> av.codec.Codec:
    """The explicit `codec`, or the container's first default encoder that keeps the source's
    bit depth (the first available one if none does)."""
    muxer = check_codec(codec, path)
    if codec is not None:
        return video_encoder(codec)
    names = DEFAULT_ENCODERS.get(muxer, (H264,))
    available = [video_encoder(name) for name in names if name in av.codecs_available]
    if not available:
        raise OutputError(f"{path}: this FFmpeg has none of the encoders for {path.suffix} ({', '.join(names)})")
    return next((c for c in available if not loses_depth(choose_pix_fmt(c, info), info)), available[0])


def encoder_options(codec: av.codec.Codec, crf: int) -> dict[str, str]:
    """`crf` (each encoder reads it on its own scale) and the encoder's own settings."""
    return {"crf": str(crf), **ENCODER_OPTIONS.get(codec.name, {})}


def loses_depth(pix_fmt: str, info: SourceInfo) -> bool:
    """True when a deep (10/12-bit) source would be written with 8 bits."""
    return info.bit_depth > 8 and frame_bit_depth(pix_fmt) <= 8


def choose_pix_fmt(codec: av.codec.Codec, info: SourceInfo) -> str:
    """The encoder pixel format closest to the input's chroma and depth that `codec` supports."""
    name = info.pix_fmt or ""
    if "444" in name or "rgb" in name or "gbr" in name:
        chroma = "444"
    elif "422" in name or name.startswith("nv16"):
        chroma = "422"
    else:
        chroma = "420"
    if chroma != "444" and (info.width % 2 or (chroma == "420" and info.height % 2)):
        chroma = "444"  # 4:2:x needs even sizes; 4:4:4 keeps odd sizes exactly
    depth = "10le" if info.bit_depth > 8 else ""
    supported = [f.name for f in codec.video_formats or ()]
    for candidate in (f"yuv{chroma}p{depth}", f"yuv444p{depth}", f"yuv420p{depth}", f"yuv{chroma}p", "yuv420p"):
        if not supported or candidate in supported:
            return candidate
    return supported[0]
