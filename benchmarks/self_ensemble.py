"""How much a model gains from seeing each frame in several orientations (self-ensemble).

    python benchmarks/self_ensemble.py [--model msdeblur-s] [--weights W] [--blur default] [--seed 0]
        [--views 1,2,8]

On the held-out split of `train_sharp`, blurred as `streamdeblur eval` blurs it, prints the
mean PSNR gain of the model's output averaged over the first N of the eight flips and
transposes (`engine.ensemble.self_ensemble`, what `train --teacher-views N` teaches with), the
output rounded to 8 bits as `eval` rounds it. With one view it is `eval`'s own figure. The
gap between one view and eight says how much a student could learn from its own
self-ensemble as a teacher.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from streamdeblur.engine.ensemble import self_ensemble
from streamdeblur.engine.weights import load_model
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, eval_frames, to_tensor


def gain_db(output: torch.Tensor, blurry: torch.Tensor, sharp: torch.Tensor) -> float:
    rounded = (output.clamp(0, 1) * 255).round() / 255
    return 10 * torch.log10((blurry - sharp).pow(2).mean() / (rounded - sharp).pow(2).mean()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--weights", default="default")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--blur", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", default="1,2,8")
    args = parser.parse_args()
    views = [int(v) for v in args.views.split(",")]
    model = load_model(args.model, args.weights).eval().for_inference()
    gains: dict[int, list[float]] = {v: [] for v in views}
    options = EvalOptions(blur=args.blur, seed=args.seed)
    with torch.no_grad():
        for _, frames in eval_frames(open_dataset(args.data, "test"), options):
            for frame in frames:
                blurry, sharp = to_tensor(frame.blurry), to_tensor(frame.sharp)
                for v in views:
                    gains[v].append(gain_db(self_ensemble(model, blurry, v), blurry, sharp))
    cells = " | ".join(f"{v} view{'s' * (v > 1)}: {statistics.fmean(g):+.4f}" for v, g in gains.items())
    print(f"{args.model} `{args.blur}` seed {args.seed} ({len(gains[views[0]])} frames) | {cells}")


if __name__ == "__main__":
    main()
