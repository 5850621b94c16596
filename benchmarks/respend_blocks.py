"""A trained msdeblur's weights moved to another layout of residual blocks, for `train --init`.

    python benchmarks/respend_blocks.py weights/msdeblur-s.safetensors runs/s125-init.safetensors \
        --keep 0 --keep 1,2 --keep 0,1,2,3 --blocks 1,2,5

Each `--keep` (one per scale, coarsest first) lists the old blocks that scale keeps, in
order; `--blocks` gives the new layout, whose blocks beyond the kept ones are appended as
the identity (their second convolution zero, as `grow` starts new blocks), so the new
model computes what the kept blocks did. Why: removing blocks one at a time from the
trained S (`ablate` below) showed which of them the held-out figures rely on, and compute
spent on blocks they do not rely on can be spent where they do.

    python benchmarks/respend_blocks.py weights/msdeblur-s.safetensors --ablate

prints the held-out PSNR gain (seeds 1 and 2 of `default` and `mild`, as `streamdeblur
eval` scores them) with each block removed in turn.
"""

from __future__ import annotations

import argparse
import copy

import torch

from streamdeblur.engine.build import EngineOptions, build_engine
from streamdeblur.engine.weights import load_state_dict, save_weights
from streamdeblur.models.msdeblur import MultiScaleDeblur, Width
from streamdeblur.models.registry import get_spec
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, EvalSet, evaluate, prepare

MODEL = "msdeblur-s"
DRAWS = [(blur, seed) for blur in ("default", "mild") for seed in (1, 2)]


def old_model(state: dict[str, torch.Tensor]) -> MultiScaleDeblur:
    """The network `state` belongs to, its layout read from the keys."""
    blocks = tuple(len({key.split(".")[3] for key in state if key.startswith(f"scales.{s}.body.")}) for s in range(3))
    model = MultiScaleDeblur(Width(channels(state), blocks))
    model.load_state_dict(state, strict=True)
    return model.eval()


def channels(state: dict[str, torch.Tensor]) -> int:
    return state["scales.0.head.weight"].shape[0]


def respend(state: dict[str, torch.Tensor], keep: list[list[int]], blocks: tuple[int, ...]) -> dict:
    """`state` in the layout `blocks`, keeping the blocks `keep` names (see the docstring)."""
    model = MultiScaleDeblur(Width(channels(state), blocks))
    new = {key: value.detach().clone() for key, value in model.state_dict().items()}
    for key, value in state.items():
        parts = key.split(".")
        if parts[2] != "body":
            new[key] = value
            continue
        scale, block = int(parts[1]), int(parts[3])
        if block in keep[scale]:
            new[".".join([*parts[:3], str(keep[scale].index(block)), *parts[4:]])] = value
    for scale, kept in enumerate(keep):
        for block in range(len(kept), blocks[scale]):
            for part in ("weight", "bias"):
                new[f"scales.{scale}.body.{block}.conv2.{part}"].zero_()
    return new


def gains(model: torch.nn.Module, draws: dict[str, tuple[EvalOptions, EvalSet]]) -> dict[str, float]:
    """Mean PSNR gain per draw, through the model stage `streamdeblur eval` uses."""
    runner = build_engine(EngineOptions(MODEL, device="cpu", precision="fp32"), (0, 0), model=model).runner
    return {name: round(evaluate(runner, frames, opts)["psnr"]["gain"], 3) for name, (opts, frames) in draws.items()}


def ablate(model: MultiScaleDeblur) -> None:
    photos = [open_dataset("sharp:../shared/data/train_sharp", "test")]
    draws = {}
    for blur, seed in DRAWS:  # blurred and measured once, for every model
        options = EvalOptions(blur=blur, seed=seed)
        draws[f"{blur} {seed}"] = (options, prepare(photos, options))
    print("all blocks", gains(model, draws), flush=True)
    for s, scale in enumerate(model.scales):
        for b in range(len(scale.body)):
            pruned = copy.deepcopy(model)
            del pruned.scales[s].body[b]
            print(f"without scale {s} block {b}", gains(pruned, draws), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights")
    parser.add_argument("out", nargs="?")
    parser.add_argument("--keep", action="append", default=[], help="old blocks a scale keeps, e.g. 1,2")
    parser.add_argument("--blocks", help="the new layout, coarsest first, e.g. 1,2,5")
    parser.add_argument("--ablate", action="store_true")
    args = parser.parse_args()
    spec = get_spec(MODEL)
    state = load_state_dict(args.weights, spec)
    if args.ablate:
        ablate(old_model(state))
        return
    keep = [[int(b) for b in k.split(",") if b] for k in args.keep]
    blocks = tuple(int(b) for b in args.blocks.split(","))
    if len(keep) != 3 or len(blocks) != 3 or any(len(k) > n for k, n in zip(keep, blocks, strict=True)):
        parser.error("one --keep per scale, each no longer than that scale's --blocks")
    save_weights(respend(state, keep, blocks), args.out, spec, {"respent_from": args.weights})


if __name__ == "__main__":
    main()
