"""YUV ↔ RGB with swscale's defaults against the product's flags: bias, error and time.

    python benchmarks/yuv_rgb.py [CLIP] [--frames 30]   # default: ../shared/data/media/01_dog.mp4

For each decoded frame: YUV → RGB → YUV → RGB, as decoding, then encoding and decoding the
output again do. Reports the round trip's mean shift of the luma plane and of RGB (levels),
its RGB RMS error, and the milliseconds per frame of the two conversions (one thread each
way, one converter per direction, as the product keeps one per stream).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from streamdeblur.io.colour import SWS_FLAGS, stream_colour


def round_trip(path: Path, frames: int, flags: int | None) -> dict:
    to_rgb, to_yuv = VideoReformatter(), VideoReformatter()
    luma_shift, rgb_shift, rms, seconds = [], [], [], 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        colour = stream_colour(stream)
        rgb_args = {"src_colorspace": colour.sws_matrix, "src_color_range": colour.sws_range, "interpolation": flags}
        yuv_args = {"dst_colorspace": colour.sws_matrix, "dst_color_range": colour.sws_range, "interpolation": flags}
        for index, frame in enumerate(container.decode(stream)):
            if index == frames:
                break
            start = time.perf_counter()
            rgb = to_rgb.reformat(frame, format="rgb24", threads=1, **rgb_args).to_ndarray()
            yuv = to_yuv.reformat(
                av.VideoFrame.from_ndarray(rgb, format="rgb24"), format=frame.format.name, threads=1, **yuv_args
            )
            seconds += time.perf_counter() - start
            back = to_rgb.reformat(yuv, format="rgb24", threads=1, **rgb_args).to_ndarray().astype(float)
            luma_shift.append(yuv.to_ndarray(format="gray").mean() - frame.to_ndarray(format="gray").mean())
            rgb_shift.append((back - rgb).mean())
            rms.append(np.sqrt(((back - rgb) ** 2).mean()))
    n = len(rms)
    return {
        "luma": np.mean(luma_shift),
        "rgb": np.mean(rgb_shift),
        "rms": np.mean(rms),
        "ms": 1000 * seconds / n,
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clip", nargs="?", type=Path, default=Path("../shared/data/media/01_dog.mp4"))
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    print("| conversion | frames | luma shift | RGB shift | RGB RMS error | ms per frame (both ways) |")
    print("|---|---:|---:|---:|---:|---:|")
    bicubic = SWS_FLAGS & ~Interpolation.BILINEAR | Interpolation.BICUBIC
    rows = (("swscale defaults", None), ("the product's (`SWS_FLAGS`)", SWS_FLAGS), ("the same, bicubic", bicubic))
    for name, flags in rows:
        r = round_trip(args.clip, args.frames, flags)
        print(f"| {name} | {r['n']} | {r['luma']:+.3f} | {r['rgb']:+.3f} | {r['rms']:.3f} | {r['ms']:.1f} |")


if __name__ == "__main__":
    main()
