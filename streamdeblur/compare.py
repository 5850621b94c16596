"""`streamdeblur compare INPUT OUTPUT -o side_by_side.{png,mp4}`: look instead of read.

Panels side by side: input | output, optionally | edges (the input's edges in red, the
output's in green: yellow where both have them, green where deblurring brought detail back).
Each picture panel carries its blur score (Laplacian variance, the `--selective` gate's
scale). Videos and image sequences make a video with the input's timing; images, or
`--frame N` of a video, make an image.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from streamdeblur.core.errors import InputError, OutputError, UsageError
from streamdeblur.core.frame import Frame, to_rgb8
from streamdeblur.core.metrics import sharpness
from streamdeblur.io.containers import check_codec
from streamdeblur.io.sinks import EncodeOptions, VideoFileSink, check_target, input_paths, write_image
from streamdeblur.io.sources import IMAGE_EXTENSIONS, Source, open_source

BANNER = 0.07  # banner height as a fraction of the panel height (at least 18 px)


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """The panel with a dark banner and `text` along its top."""
    out = image.copy()
    h, w = out.shape[:2]
    bar = max(18, int(h * BANNER))
    out[:bar] = (out[:bar] * 0.35).astype(np.uint8)
    scale = bar / 30
    cv2.putText(out, text, (6, int(bar * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def edge_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Edges of `before` in red and of `after` in green, on one shared scale."""
    mags = [np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F, ksize=3)) for x in (before, after)]
    top = max(float(np.percentile(np.concatenate([m.ravel() for m in mags]), 99.5)), 1e-6)
    red, green = (np.clip(m / top * 255, 0, 255).astype(np.uint8) for m in mags)
    return np.dstack([red, green, np.zeros_like(red)])


def side_by_side(before: np.ndarray, after: np.ndarray, edges: bool) -> np.ndarray:
    """input | output [| edges] with labels and blur scores."""
    before, after = to_rgb8(before), to_rgb8(after)
    panels = [
        labelled(before, f"input  blur score {sharpness(before):.0f}"),
        labelled(after, f"output  blur score {sharpness(after):.0f}"),
    ]
    if edges:
        panels.append(labelled(edge_map(before, after), "edges: input red, output green"))
    return np.concatenate(panels, axis=1)


def compare(
    input_uri: str, output_uri: str, dest: str, edges: bool, frame: int | None, overwrite: bool, encode: EncodeOptions
) -> int:
    """Write the comparison to `dest`; returns the number of frames written.

    Usage errors come before the inputs are opened; `dest` may replace neither input, even
    with `overwrite` (as for `run`'s OUTPUT).
    """
    target = Path(dest)
    as_image = target.suffix.lower() in IMAGE_EXTENSIONS
    if frame is not None and not as_image:
        raise UsageError("--frame picks the frame of an image comparison; give -o an image file (.png)")
    if not as_image:
        check_codec(encode.codec, target)
    check_target(target, overwrite)
    with open_source(input_uri) as a, open_source(output_uri) as b:
        if target.resolve() in input_paths(a, b):
            raise OutputError(f"{target}: the comparison would overwrite one of the files it compares")
        if a.info.size != b.info.size:
            raise InputError(
                f"{output_uri} is {b.info.width}x{b.info.height} but {input_uri} is {a.info.width}x{a.info.height}"
            )
        pairs = _pairs(a, b, input_uri, output_uri)
        if as_image:
            return _write_image(target, pairs, frame or 0, edges)
        return _write_video(target, a, pairs, edges, encode)


def _pairs(a: Source, b: Source, a_uri: str, b_uri: str) -> Iterator[tuple[Frame, Frame]]:
    """Frames of both in step; one running out before the other is an error."""
    count = 0
    for before, after in itertools.zip_longest(a.frames(), b.frames()):
        if before is None or after is None:
            short, long_ = (a_uri, b_uri) if before is None else (b_uri, a_uri)
            raise InputError(f"{short} has fewer frames ({count}) than {long_}")
        yield before, after
        count += 1


def _write_image(target: Path, pairs: Iterator[tuple[Frame, Frame]], index: int, edges: bool) -> int:
    pair = next(itertools.islice(pairs, index, None), None)
    if pair is None:
        raise InputError(f"--frame {index}: the inputs have fewer frames")
    before, after = pair
    write_image(target, Frame(0, side_by_side(before.image, after.image, edges), 0, before.time_base))
    return 1


def _write_video(
    target: Path, a: Source, pairs: Iterator[tuple[Frame, Frame]], edges: bool, encode: EncodeOptions
) -> int:
    panels = 3 if edges else 2
    info = dataclasses.replace(a.info, kind="video", width=a.info.width * panels, bit_depth=8, pix_fmt=None)
    sink = VideoFileSink(target, info, encode, remux=None)
    count = 0
    try:
        for before, after in pairs:
            image = side_by_side(before.image, after.image, edges)
            sink.write(Frame(count, image, before.pts, before.time_base))
            count += 1
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    return count
