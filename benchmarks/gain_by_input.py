"""Where a model's held-out gain comes from: PSNR gain by how blurred the input was.

    streamdeblur eval --model msdeblur-s --data sharp:../shared/data/train_sharp --seed 1 --json > s1.json
    python benchmarks/gain_by_input.py s1.json s2.json [--bands 26,32] [--leave-out NAME]

Reads `streamdeblur eval --json` reports (each frame's input and output PSNR against the
truth) and prints, per report, the mean gain of the frames in each band of input PSNR, and
over all the reports together. Reports of two models on the same draws put side by side show
whether one gains on strongly blurred frames or on nearly sharp ones. `--leave-out NAME`
sets aside the clips whose name contains NAME and prints their gains on their own, to show
how much one photo decides a split's figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def bands_of(edges: list[float]) -> list[tuple[float, float]]:
    bounds = [float("-inf"), *edges, float("inf")]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def label(low: float, high: float) -> str:
    if low == float("-inf"):
        return f"input < {high:g} dB"
    if high == float("inf"):
        return f"input >= {low:g} dB"
    return f"{low:g} to {high:g} dB"


def rows(clips: list[dict]) -> list[tuple[float, float]]:
    """(input PSNR, gain) of every clip of a report."""
    return [(c["psnr_input"], c["psnr_output"] - c["psnr_input"]) for c in clips]


def table(name: str, clips: list[tuple[float, float]], bands: list[tuple[float, float]]) -> str:
    cells = []
    for low, high in bands:
        gains = [gain for psnr, gain in clips if low <= psnr < high]
        cells.append(f"{label(low, high)}: {statistics.fmean(gains):+.2f} ({len(gains)})" if gains else "-")
    return f"{name:32s} " + " | ".join(cells) + f" | all: {statistics.fmean(g for _, g in clips):+.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--bands", default="26,32", help="Input PSNR edges, dB.")
    parser.add_argument("--leave-out", metavar="NAME", help="Set aside the clips whose name contains NAME.")
    args = parser.parse_args()
    bands = bands_of([float(x) for x in args.bands.split(",")])
    everything = []
    for path in args.reports:
        kept, left = [], []
        for clip in json.loads(path.read_text())["clips"]:
            (left if args.leave_out and args.leave_out in clip["name"] else kept).append(clip)
        clips = rows(kept)
        everything += clips
        print(table(path.name, clips, bands))
        for psnr, gain in rows(left):
            print(f"{'':32s} left out: input {psnr:.2f} dB, gain {gain:+.2f}")
    if len(args.reports) > 1:
        print(table("together", everything, bands))


if __name__ == "__main__":
    main()
