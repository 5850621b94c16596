"""Is msdeblur's frame gate what holds its gain back? The gate against a perfect one.

    python benchmarks/gate_oracle.py [--weights weights/msdeblur-s.safetensors] [--model msdeblur-s]
        [--seed 0] [--window 65 ...] [--per-frame]

On the held-out photos of `../shared/data/train_sharp` (the frames `streamdeblur eval`
scores, `default` and `mild` blur), each frame's whole correction c (the gate held open) is
compared with what the gate lets through, and with the best share a perfect per-frame gate
could pick: g* = <c, sharp - blurry> / <c, c>, floored at 0; and with a perfect gate per
block of 64 and of 16 px (a share per block, fitted the same way: what a spatial gate could
reach at best). Prints the mean PSNR gain of each, and the mean of the two per-frame gates.
Float outputs, clamped to [0, 1] (not rounded to 8 bits as `eval` does: a few hundredths of
a dB apart).

`--window K` adds the trained gate computed over K x K windows of the full-size scale's
features (4K x 4K pixels) instead of the whole frame, its map upsampled to the frame: the
gate learnt its statistic on training crops (256 px), and a frame is larger (NAFNet's
"test-time local converter" answers that mismatch this way). `--per-frame` prints each
photo's gated and perfect gains: a mean can hide one photo that decides it.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.core import metrics
from streamdeblur.engine.weights import load_model
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, eval_frames, to_tensor

OPEN = 10.0  # a gate logit of GATE_GAIN x 10: sigmoid(100), the whole correction
BLOCKS = (64, 16)  # px, for the perfect spatial gates


def psnr(image: torch.Tensor, sharp: torch.Tensor) -> float:
    return metrics.psnr(image.clamp(0, 1), sharp).item()


def open_gate(name: str, weights: str) -> nn.Module:
    """The model with its frame gate held open: its output is the whole correction."""
    model = load_model(name, weights).eval()
    with torch.no_grad():
        model.gate.fc2.weight.zero_()
        model.gate.fc2.bias.fill_(OPEN)
    return model


def blockwise_gain(blurry: torch.Tensor, sharp: torch.Tensor, whole: torch.Tensor, block: int) -> float:
    """PSNR gain with the best share of `whole` per `block` x `block` block (floored at 0),
    on the part of the frame that whole blocks cover."""
    h, w = (blurry.shape[-2] // block) * block, (blurry.shape[-1] // block) * block
    blurry, sharp, whole = blurry[..., :h, :w], sharp[..., :h, :w], whole[..., :h, :w]
    num = F.avg_pool2d((whole * (sharp - blurry)).sum(1, keepdim=True), block)
    den = F.avg_pool2d(whole.pow(2).sum(1, keepdim=True), block).clamp(min=1e-12)
    share = F.interpolate((num / den).clamp(min=0), scale_factor=block, mode="nearest")
    return psnr(blurry + share * whole, sharp) - psnr(blurry, sharp)


class WindowedGate(nn.Module):
    """A trained `FrameGate` applied to the spread of the features over each K x K window
    (K odd, in feature pixels; windows cut by the border average what they cover) instead of
    over the frame: a gate map [B, 1, H, W] at the frame's size, `scale` times the features'."""

    def __init__(self, gate: nn.Module, window: int, scale: int):
        super().__init__()
        self.gate, self.window, self.scale = gate, window, scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        f, k = features.float(), self.window
        mean = F.avg_pool2d(f, k, 1, k // 2, count_include_pad=False)
        square = F.avg_pool2d(f * f, k, 1, k // 2, count_include_pad=False)
        std = (square - mean * mean).clamp(min=0).sqrt()
        share = self.gate.share(std.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return F.interpolate(share, scale_factor=self.scale, mode="bilinear", align_corners=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--weights", default="weights/msdeblur-s.safetensors")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--seed", type=int, default=0, help="the synthetic blur's draw, as `eval --seed`")
    parser.add_argument("--window", type=int, action="append", default=[], help="odd, in feature pixels")
    parser.add_argument("--per-frame", action="store_true")
    args = parser.parse_args()
    gated = load_model(args.model, args.weights).eval()
    opened = open_gate(args.model, args.weights)
    windowed = {}
    for k in args.window:
        windowed[k] = load_model(args.model, args.weights).eval()
        windowed[k].gate = WindowedGate(windowed[k].gate, k, windowed[k].scales[-1].r)
    photos = open_dataset(args.data, "test")
    for blur in ("default", "mild"):
        rows = []
        for name, frames in eval_frames(photos, EvalOptions(blur=blur, seed=args.seed)):
            for frame in frames:
                blurry, sharp = to_tensor(frame.blurry), to_tensor(frame.sharp)
                with torch.no_grad():
                    out, whole = gated(blurry), opened(blurry) - blurry
                    by_window = {k: model(blurry) for k, model in windowed.items()}
                base, norm = psnr(blurry, sharp), whole.pow(2).sum()
                gate = ((out - blurry) * whole).sum() / norm
                best = (((sharp - blurry) * whole).sum() / norm).clamp(min=0)
                rows.append(
                    {
                        "gated": psnr(out, sharp) - base,
                        **{f"window_{k}": psnr(image, sharp) - base for k, image in by_window.items()},
                        "open": psnr(blurry + whole, sharp) - base,
                        "perfect": psnr(blurry + best * whole, sharp) - base,
                        **{f"perfect_{b}px": blockwise_gain(blurry, sharp, whole, b) for b in BLOCKS},
                        "gate": gate.item(),
                        "perfect_gate": best.item(),
                    }
                )
                if args.per_frame:
                    row = rows[-1]
                    print(
                        f"{blur:8s} {name:32s} input {base:5.2f} dB  gated {row['gated']:+.2f}  "
                        f"perfect {row['perfect']:+.2f}  gate {row['gate']:.2f} / {row['perfect_gate']:.2f}"
                    )
        means = {key: round(statistics.fmean(r[key] for r in rows), 3) for key in rows[0]}
        print(f"{blur:8s} {len(rows)} frames, PSNR gain (dB) and mean gate:", means)


if __name__ == "__main__":
    main()
