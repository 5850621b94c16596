"""Colour: read the stream's matrix and range, convert to RGB with them, tag the output the same.

Decoders hand us YUV; the model wants RGB. Converting with the wrong matrix (BT.601 vs
BT.709) or range (limited vs full) shifts every colour in the output, so the conversion uses
what the stream says, and where it says nothing, what FFmpeg-based players assume: BT.709
for HD (height >= 720) and BT.601 below, limited range unless the pixel format is a JPEG
("yuvj") one. The encoder is tagged with the same values so players show the colours the
input had.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

# FFmpeg's AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange codes.
SPC_BT709, SPC_SMPTE170M = 1, 6
PRI_BT709, PRI_SMPTE170M = 1, 6
TRC_BT709, TRC_SMPTE170M = 1, 6
RANGE_LIMITED, RANGE_FULL = 1, 2  # 0 is unspecified
UNSPECIFIED = 2  # the "unspecified" code for matrix, primaries and transfer

# How swscale converts between YUV and RGB. Its defaults (fast rounding, chroma at reduced
# precision) darken: frames of ../shared/data/media/01_dog.mp4 came back from YUV → RGB → YUV
# with their luma 1.26 levels lower, and the product's output was 0.8 to 1.5 levels darker
# than its input with no model at all (benchmarks/real_clips.py). Accurate rounding with
# full-precision chroma makes the round trip unbiased (to 0.001 levels) and cuts its RMS
# error from 1.46 to 0.81 levels, for about 8 instead of 4 to 5 ms a 720p frame, both ways,
# on one thread; bicubic chroma would bring it to 0.50 for 4 ms more (benchmarks/yuv_rgb.py).
SWS_FLAGS = (
    Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT | Interpolation.FULL_CHR_H_INP
)

# swscale knows one coefficient set per family; map the stream's matrix code onto it.
_SWS_MATRIX = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,
    6: Colorspace.ITU601,
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,
    10: Colorspace.BT2020,
}


@dataclass(frozen=True)
class ColourInfo:
    """The colour description of a video stream, with unspecified values already resolved."""

    matrix: int
    range: int
    primaries: int
    transfer: int

    @property
    def sws_matrix(self) -> Colorspace:
        return _SWS_MATRIX.get(self.matrix, Colorspace.ITU601)

    @property
    def sws_range(self) -> ColorRange:
        return ColorRange.JPEG if self.range == RANGE_FULL else ColorRange.MPEG

    def describe(self) -> str:
        names = {1: "BT.709", 5: "BT.601", 6: "BT.601", 9: "BT.2020"}
        return f"{names.get(self.matrix, f'matrix {self.matrix}')} {'full' if self.range == RANGE_FULL else 'limited'}"


def resolve_colour(
    matrix: int | None,
    range_: int | None,
    primaries: int | None,
    transfer: int | None,
    height: int,
    pix_fmt: str | None,
) -> ColourInfo:
    """Fill in what the stream leaves unspecified, the way FFmpeg-based players would."""
    hd = height >= 720
    if not matrix or matrix == UNSPECIFIED:
        matrix = SPC_BT709 if hd else SPC_SMPTE170M
    if not range_:
        range_ = RANGE_FULL if pix_fmt and pix_fmt.startswith("yuvj") else RANGE_LIMITED
    if not primaries or primaries == UNSPECIFIED:
        primaries = PRI_BT709 if matrix == SPC_BT709 or hd else PRI_SMPTE170M
    if not transfer or transfer == UNSPECIFIED:
        transfer = TRC_BT709 if matrix == SPC_BT709 or hd else TRC_SMPTE170M
    return ColourInfo(int(matrix), int(range_), int(primaries), int(transfer))


def stream_colour(stream: av.video.stream.VideoStream) -> ColourInfo:
    """The colour description of a decoded stream (unspecified values resolved)."""
    cc = stream.codec_context
    return resolve_colour(cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc, cc.height, cc.pix_fmt)


def frame_colour(frame: av.VideoFrame) -> ColourInfo:
    """The colour description a decoded frame carries (unspecified values resolved), for
    streams that describe themselves only once decoding has begun."""
    return resolve_colour(
        frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc, frame.height, frame.format.name
    )


def frame_bit_depth(pix_fmt: str | None) -> int:
    """Bits per component of a pixel format (8 for unknown formats)."""
    if not pix_fmt:
        return 8
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


def rgb_format(bit_depth: int) -> str:
    """The packed RGB format we work in: 8-bit, or 16-bit for deeper sources (10/12-bit)."""
    return "rgb24" if bit_depth <= 8 else "rgb48le"


def frame_to_rgb(
    frame: av.VideoFrame, colour: ColourInfo, bit_depth: int, reformatter: VideoReformatter | None = None
) -> np.ndarray:
    """H x W x 3 RGB (uint8, or uint16 for deep sources) using the stream's matrix and range.

    Pass one `reformatter` per stream (see `new_reformatter`), used by one thread only.
    """
    if frame.format.name in ("rgb24", "rgb48le"):
        return frame.to_ndarray()
    convert = {
        "format": rgb_format(bit_depth),
        "src_colorspace": colour.sws_matrix,
        "src_color_range": colour.sws_range,
        "interpolation": SWS_FLAGS,
    }
    if reformatter is None:
        return frame.to_ndarray(**convert)
    return reformatter.reformat(frame, **convert).to_ndarray()


def rgb_to_frame(
    image: np.ndarray, pix_fmt: str, colour: ColourInfo, reformatter: VideoReformatter | None = None
) -> av.VideoFrame:
    """An encoder-ready frame in `pix_fmt`, converted with and tagged by `colour` (with the
    stream's own `reformatter`, as in `frame_to_rgb`)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=rgb_format(image.itemsize * 8))
    convert = {
        "format": pix_fmt,
        "dst_colorspace": colour.sws_matrix,
        "dst_color_range": colour.sws_range,
        "interpolation": SWS_FLAGS,
    }
    out = reformatter.reformat(frame, **convert) if reformatter is not None else frame.reformat(**convert)
    tag_colour(out, colour)
    return out


def new_reformatter() -> VideoReformatter:
    """A pixel-format converter to reuse for every frame of one stream.

    `VideoFrame.to_ndarray(format=...)` and `VideoFrame.reformat` make a new converter for
    each frame, so swscale sets itself up again and starts and ends its slice threads (one
    per core) for every frame converted: four threads created per frame of a file job, with
    their stacks page-faulted in each time (issue #13; docs/benchmarks.md). One converter per
    stream keeps its set-up and threads; its output is the same, byte for byte.
    """
    return VideoReformatter()


def tag_colour(target: av.video.codeccontext.VideoCodecContext | av.VideoFrame, colour: ColourInfo) -> None:
    """Write the colour description into an encoder, so it lands in the bitstream/container, or a frame."""
    target.colorspace = colour.matrix
    target.color_range = colour.range
    target.color_primaries = colour.primaries
    target.color_trc = colour.transfer
