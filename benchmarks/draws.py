"""Held-out gains of candidate weights over several blur draws, and the shipping rule's verdict.

    python benchmarks/draws.py weights/msdeblur-s.safetensors runs/RUN/checkpoints/step_0000250 \
        [--model msdeblur-s] [--seeds 0,1,2] [--blurs default,mild] [--views 1] [--reports DIR] [--margin 0.02]

For each weights file (or training checkpoint), blur and seed, runs `streamdeblur eval
--json --views N` on the held-out split in a fresh process (the figure `eval` itself
prints) and keeps the report as DIR/TAG-BLUR-SEED.json, TAG being the weights' name (a
checkpoint: its run and step; `-vN` added for more than one view); a report already there
is read instead of run again, so candidates can be added one at a time.
`benchmarks/gain_by_input.py` reads the same reports.

Prints each candidate's PSNR gain per draw and the means over the draws. The first weights
are the baseline (the shipped file): a candidate passes the rule of docs/training.md if its
mean on the first blur is above the baseline's and its mean on each other blur is no more
than `--margin` dB below the baseline's. One draw of the 21 held-out photos moves a mean by
a few hundredths of a dB, so a choice is made on several draws, by a rule set beforehand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

DATA = "sharp:../shared/data/train_sharp"


def tag(weights: Path, views: int) -> str:
    """A report name for `weights` seen in `views`: the file's stem, or RUN-STEP for a
    checkpoint folder, with -vN for more than one view."""
    if weights.is_dir() and weights.parent.name == "checkpoints":
        name = f"{weights.parent.parent.name}-{weights.name.removeprefix('step_').lstrip('0') or '0'}"
    else:
        name = weights.stem
    return name if views == 1 else f"{name}-v{views}"


def gain(weights: Path, model: str, blur: str, seed: int, views: int, reports: Path) -> float:
    """The PSNR gain of one draw, from its kept report or a new `streamdeblur eval --json`."""
    report = reports / f"{tag(weights, views)}-{blur}-{seed}.json"
    if not report.exists():
        command = [sys.executable, "-m", "streamdeblur", "eval", "--model", model, "--weights", str(weights)]
        command += ["--data", DATA, "--blur", blur, "--seed", str(seed), "--views", str(views)]
        command += ["--device", "cpu", "--json"]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        report.write_text(result.stdout)
    return json.loads(report.read_text())["psnr"]["gain"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+", type=Path, help="the baseline first, then the candidates")
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--blurs", default="default,mild")
    parser.add_argument("--views", type=int, default=1, help="each eval's --views")
    parser.add_argument("--reports", type=Path, default=Path("runs/draws"))
    parser.add_argument("--margin", type=float, default=0.02)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    blurs = args.blurs.split(",")
    args.reports.mkdir(parents=True, exist_ok=True)
    means: dict[Path, list[float]] = {}
    draws = " / ".join(map(str, seeds))
    print(f"| weights | {' | '.join(f'`{blur}` seeds {draws} | mean' for blur in blurs)} | rule |")
    print(f"|---|{'---|---:|' * len(blurs)}---|")
    for weights in args.weights:
        cells, means[weights] = [], []
        for blur in blurs:
            gains = [gain(weights, args.model, blur, seed, args.views, args.reports) for seed in seeds]
            means[weights].append(statistics.fmean(gains))
            cells += [" / ".join(f"{g:+.3f}" for g in gains), f"{means[weights][-1]:+.4f}"]
        base = means[args.weights[0]]
        first, rest = (
            means[weights][0] > base[0],
            all(m >= b - args.margin for m, b in zip(means[weights][1:], base[1:], strict=True)),
        )
        verdict = "baseline" if weights == args.weights[0] else ("passes" if first and rest else "fails")
        print(f"| {tag(weights, args.views)} | {' | '.join(cells)} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
