"""Is msdeblur's frame gate what holds its gain back? The gate against a perfect one.

    python benchmarks/gate_oracle.py [--weights weights/msdeblur-s.safetensors] [--model msdeblur-s]

On the held-out photos of `../shared/data/train_sharp` (the frames `streamdeblur eval`
scores, `default` and `mild` blur), each frame's whole correction c (the gate held open) is
compared with what the gate lets through, and with the best share a perfect per-frame gate
could pick: g* = <c, sharp - blurry> / <c, c>, floored at 0; and with a perfect gate per
block of 64 and of 16 px (a share per block, fitted the same way: what a spatial gate could
reach at best). Prints the mean PSNR gain of each, and the mean of the two per-frame gates.
Float outputs, clamped to [0, 1] (not rounded to 8 bits as `eval` does: a few hundredths of
a dB apart).
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

from streamdeblur.core import metrics
from streamdeblur.engine.weights import load_model
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, eval_frames, to_tensor

OPEN = 10.0  # a gate logit of GATE_GAIN x 10: sigmoid(100), the whole correction
BLOCKS = (64, 16)  # px, for the perfect spatial gates


def psnr(image: torch.Tensor, sharp: torch.Tensor) -> float:
    return metrics.psnr(image.clamp(0, 1), sharp).item()


def blockwise_gain(blurry: torch.Tensor, sharp: torch.Tensor, whole: torch.Tensor, block: int) -> float:
    """PSNR gain with the best share of `whole` per `block` x `block` block (floored at 0),
    on the part of the frame that whole blocks cover."""
    h, w = (blurry.shape[-2] // block) * block, (blurry.shape[-1] // block) * block
    blurry, sharp, whole = blurry[..., :h, :w], sharp[..., :h, :w], whole[..., :h, :w]
    num = F.avg_pool2d((whole * (sharp - blurry)).sum(1, keepdim=True), block)
    den = F.avg_pool2d(whole.pow(2).sum(1, keepdim=True), block).clamp(min=1e-12)
    share = F.interpolate((num / den).clamp(min=0), scale_factor=block, mode="nearest")
    return psnr(blurry + share * whole, sharp) - psnr(blurry, sharp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--weights", default="weights/msdeblur-s.safetensors")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    args = parser.parse_args()
    gated = load_model(args.model, args.weights).eval()
    opened = load_model(args.model, args.weights).eval()
    with torch.no_grad():
        opened.gate.fc2.weight.zero_()
        opened.gate.fc2.bias.fill_(OPEN)
    photos = open_dataset(args.data, "test")
    for blur in ("default", "mild"):
        rows = []
        for _, frames in eval_frames(photos, EvalOptions(blur=blur)):
            for frame in frames:
                blurry, sharp = to_tensor(frame.blurry), to_tensor(frame.sharp)
                with torch.no_grad():
                    out, whole = gated(blurry), opened(blurry) - blurry
                base, norm = psnr(blurry, sharp), whole.pow(2).sum()
                gate = ((out - blurry) * whole).sum() / norm
                best = (((sharp - blurry) * whole).sum() / norm).clamp(min=0)
                rows.append(
                    {
                        "gated": psnr(out, sharp) - base,
                        "open": psnr(blurry + whole, sharp) - base,
                        "perfect": psnr(blurry + best * whole, sharp) - base,
                        **{f"perfect_{b}px": blockwise_gain(blurry, sharp, whole, b) for b in BLOCKS},
                        "gate": gate.item(),
                        "perfect_gate": best.item(),
                    }
                )
        means = {key: round(statistics.fmean(r[key] for r in rows), 3) for key in rows[0]}
        print(f"{blur:8s} {len(rows)} frames, PSNR gain (dB) and mean gate:", means)


if __name__ == "__main__":
    main()
