"""What a model does to real footage: sharpness, colour and flicker, clip by clip.

    python benchmarks/real_clips.py [--model msdeblur-s] [CLIP ...]   # default: ../shared/data/media/*.mp4

Each clip goes through the product (`streamdeblur CLIP -o OUT.mkv --codec ffv1`: lossless,
so the encoder adds nothing), then input and output are read back frame by frame:

- blur score: the variance of the Laplacian of the luma (the `--selective` gate's score),
  mean over the frames, in → out;
- colour shift: the mean of output − input per channel (R, G, B) in 8-bit levels;
- flicker: the mean over frames of |Δ brightness change| (the change of the frame's mean
  luma, output − input, from one frame to the next), in levels: a model that brightens
  some frames and not others makes it grow;
- temporal change: mean |frame_t − frame_t-1| of the output over that of the input (1.0:
  the output moves as much as the input; noise or shimmer added by the model raise it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from streamdeblur.core.metrics import blur_score, luma

CLIPS = sorted(Path("../shared/data/media").glob("*.mp4"))


def frames(path: Path):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def measure(original: Path, processed: Path) -> dict:
    scores_in, scores_out, shifts, brightness, moves_in, moves_out = [], [], [], [], [], []
    previous = None
    for a, b in zip(frames(original), frames(processed), strict=True):
        a16, b16 = a.astype(np.int16), b.astype(np.int16)
        luma_a, luma_b = luma(a), luma(b)
        scores_in.append(blur_score(luma_a))
        scores_out.append(blur_score(luma_b))
        shifts.append((b16 - a16).reshape(-1, 3).mean(0))
        brightness.append(float(luma_b.mean() - luma_a.mean()))
        if previous is not None:
            moves_in.append(np.abs(a16 - previous[0]).mean())
            moves_out.append(np.abs(b16 - previous[1]).mean())
        previous = (a16, b16)
    return {
        "frames": len(scores_in),
        "blur_score": [round(float(np.mean(scores_in)), 1), round(float(np.mean(scores_out)), 1)],
        "colour_shift_rgb": [round(float(x), 3) for x in np.mean(shifts, 0)],
        "flicker": round(float(np.abs(np.diff(brightness)).mean()), 4),
        "temporal_change": round(float(np.mean(moves_out) / max(np.mean(moves_in), 1e-9)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*", type=Path, default=CLIPS)
    parser.add_argument("--model", default="msdeblur-s")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        for clip in args.clips:
            out = Path(temp) / f"{clip.stem}.mkv"
            command = ["streamdeblur", str(clip), "-o", str(out), "--model", args.model, "--codec", "ffv1", "-q"]
            subprocess.run(command, check=True)
            rows.append({"clip": clip.name, **measure(clip, out)})
    print(
        "| clip | frames | blur score in → out | colour shift R, G, B (levels) | flicker (levels) | temporal change |"
    )
    print("|---|---:|---|---|---:|---:|")
    for r in rows:
        shift = ", ".join(f"{x:+.2f}" for x in r["colour_shift_rgb"])
        print(
            f"| {r['clip']} | {r['frames']} | {r['blur_score'][0]:.0f} → {r['blur_score'][1]:.0f} | {shift} "
            f"| {r['flicker']:.3f} | {r['temporal_change']:.3f} |"
        )
    json.dump({"model": args.model, "rows": rows}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
