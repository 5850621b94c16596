"""Where on one held-out photo a model gains or loses: the error by region, and a picture.

    python benchmarks/photo_error.py sunhays80_img_044 [--weights weights/msdeblur-s.safetensors]
        [--model msdeblur-s] [--blur default] [--seed 0] [--rows 0:150 --rows 150:]
        [--view Y,X --out view.png]

The photo is blurred as `streamdeblur eval` blurs it (same preset, seed and name). For the
whole frame and for each band of rows (`--rows A:B`), prints the RMS error (8-bit levels)
of the input and of the output against the ground truth, and how well the model's
correction lines up with what was missing (the cosine of correction and sharp - blurry:
1 is the right direction, 0 is noise to it). `--view Y,X` writes a 128 x 192 px crop at
(Y, X): ground truth, input and output above, their errors and the correction (x8 around
mid-grey) below, at twice the size. `gate_oracle.py --per-frame` says which photos to look at.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from streamdeblur.engine.weights import load_model
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, eval_frames, to_tensor

VIEW = (128, 192)  # rows, columns of the --view crop
GAIN = 8  # the view's errors are amplified this much around mid-grey


def rms_levels(x: torch.Tensor) -> float:
    return 255 * x.pow(2).mean().sqrt().item()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12)).item()


def band(spec: str) -> slice:
    start, _, stop = spec.partition(":")
    return slice(int(start) if start else None, int(stop) if stop else None)


def picture(x: torch.Tensor, amplify: bool) -> np.ndarray:
    """[1, 3, H, W] → BGR uint8; errors as GAIN x around mid-grey."""
    x = x[0].permute(1, 2, 0).numpy() * 255
    x = x * GAIN + 128 if amplify else x
    return np.clip(x, 0, 255).round().astype(np.uint8)[..., ::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photo", help="a held-out photo's name, or part of it")
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--weights", default="weights/msdeblur-s.safetensors")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--blur", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", action="append", default=[], help="a band of rows, A:B (either end may be left out)")
    parser.add_argument("--view", help="Y,X: the top left corner of a crop to write to --out")
    parser.add_argument("--out", default="photo_error.png")
    args = parser.parse_args()
    model = load_model(args.model, args.weights).eval()
    found = False
    for name, frames in eval_frames(open_dataset(args.data, "test"), EvalOptions(blur=args.blur, seed=args.seed)):
        if args.photo not in name:
            continue
        found = True
        frame = next(iter(frames))
        blurry, sharp = to_tensor(frame.blurry), to_tensor(frame.sharp)
        with torch.no_grad():
            output = (model(blurry).clamp(0, 1) * 255).round() / 255  # 8-bit, as `eval` scores it
        print(f"{name}: {blurry.shape[-1]}x{blurry.shape[-2]}, {args.blur} blur, seed {args.seed}")
        for spec in ["0:", *args.rows]:
            rows = band(spec)
            b, s, o = blurry[..., rows, :], sharp[..., rows, :], output[..., rows, :]
            print(
                f"  rows {spec:>9s}: error in {rms_levels(b - s):5.2f} levels, out {rms_levels(o - s):5.2f}; "
                f"correction {rms_levels(o - b):5.2f} levels, cosine with what was missing {cosine(o - b, s - b):+.3f}"
            )
        if args.view:
            y, x = (int(v) for v in args.view.split(","))
            crop = (..., slice(y, y + VIEW[0]), slice(x, x + VIEW[1]))
            top = [picture(t[crop], False) for t in (sharp, blurry, output)]
            bottom = [picture(t[crop], True) for t in (blurry - sharp, output - sharp, output - blurry)]
            image = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
            cv2.imwrite(args.out, cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
            print(f"  wrote {args.out}: ground truth, input, output; their errors and the correction (x{GAIN})")
    if not found:
        parser.error(f"no held-out photo named like {args.photo!r}")


if __name__ == "__main__":
    main()
