"""Fit msdeblur's frame gate on whole frames, offline, from what each frame's gate could read.

    python benchmarks/gate_fit.py collect OUT.pt [--model msdeblur-s] [--weights W]
        [--split train|test] [--seeds 0,1,2] [--data sharp:../shared/data/train_sharp ...]
    python benchmarks/gate_fit.py fit TEST.pt --train TRAIN.pt [--train MORE.pt] [--variant f2 ...]
        [--mild 1.0] [--decay 0.01] [--steps 2000] [--inits 1] [--export OUT.safetensors]
    python benchmarks/gate_fit.py collect-blocks OUT.pt ...   # the same, per region of the frame
    python benchmarks/gate_fit.py fit-blocks TEST.pt --train TRAIN.pt --variant 16:local --variant 16:frame

The gate learns in training from 256 px crops, and decides on whole frames. Here it is fitted
on whole frames instead. `collect` blurs each photo of the split as `streamdeblur eval` does
(`default` and `mild`, each seed), runs the model with its gate held open, and keeps per frame
what scores any share g of its correction c exactly (floats, no clamp): with e = sharp -
blurry, MSE(g) = (|e|² - 2g<c,e> + g²|c|²) / N; and, beside that, statistics a gate could read
over the whole frame: each full-size feature channel's spread (`f2`, what the gate reads),
their fourth-moment norms (`f2p4`), the coarser scales' spreads (`coarse`), the correction's
size (`corr`) and the input's high-pass energy (`input`).

`fit` fits a gate (an MLP on the logs of the chosen statistics) to the training frames' mean
PSNR gain, `mild` frames weighted `--mild` times a `default` one, from `--inits`
initialisations, and keeps the one best on the training frames; it prints the mean gains
per blur and draw on the held-out frames beside the model's own gate and a perfect per-frame
share. `--export` writes the model's weights with the fitted gate (variant `f2`, the model's
own gate form) as fp16, for `benchmarks/draws.py` to judge.

`collect-blocks` / `fit-blocks` do the same for a gate by regions (blocks of 8 or 16 feature
pixels, shares interpolated between them): its inputs are each region's spreads and the frame's
(`:local`) or the frame's alone (`:frame`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from gate_oracle import open_gate
from safetensors import safe_open

from streamdeblur.engine.weights import load_model, save_weights
from streamdeblur.models.msdeblur import GATE_GAIN, GATE_HIDDEN
from streamdeblur.models.registry import get_spec
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, eval_frames, to_tensor

BLOCKS = (8, 16)  # feature pixels per region side, for a gate by regions
LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def moments(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per channel of [1, C, h, w]: the spread, and the fourth-moment norm of the centred values."""
    x = x.float()[0].flatten(1)
    centred = x - x.mean(1, keepdim=True)
    return {"std": centred.pow(2).mean(1).sqrt(), "p4": centred.pow(4).mean(1).pow(0.25)}


def frames(args: argparse.Namespace) -> Iterator[tuple[dict, torch.Tensor, torch.Tensor]]:
    """({name, blur, seed}, blurry, sharp) for every photo of the split, blur and draw."""
    count = 0
    for spec in args.data:
        photos = open_dataset(spec, args.split)
        for seed in args.seeds:
            for blur in ("default", "mild"):
                for name, pairs in eval_frames(photos, EvalOptions(blur=blur, seed=seed)):
                    for frame in pairs:
                        count += 1
                        row = {"name": name, "blur": blur, "seed": seed}
                        yield row, to_tensor(frame.blurry), to_tensor(frame.sharp)
                print(f"{spec} seed {seed}: {count} frames", flush=True)


def collect(args: argparse.Namespace) -> None:
    model = open_gate(args.model, args.weights)
    seen: dict[int, torch.Tensor] = {}
    for level, scale in enumerate(model.scales):
        scale.body.register_forward_hook(lambda _m, _i, out, level=level: seen.__setitem__(level, out))
    rows = []
    for row, blurry, sharp in frames(args):
        with torch.no_grad():
            c = model(blurry) - blurry
        e = sharp - blurry
        high = F.conv2d(F.pad(blurry.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate"), LAPLACE)
        row |= {
            "ee": e.pow(2).sum().item(),
            "ce": (c * e).sum().item(),
            "cc": c.pow(2).sum().item(),
            "c_rms": c.pow(2).mean().sqrt().item(),
            "c_p4": c.pow(4).mean().pow(0.25).item(),
            "hp_rms": high.pow(2).mean().sqrt().item(),
            "hp_p4": high.pow(4).mean().pow(0.25).item(),
            "hp_p8": high.pow(8).mean().pow(0.125).item(),
        }
        for level, features in seen.items():
            for key, value in moments(features).items():
                row[f"f{level}_{key}"] = value
        rows.append(row)
    torch.save(rows, args.out)


STATS = {  # name → the per-frame statistics it adds to a gate's inputs (their logs)
    "f2": ["f2_std"],
    "f2p4": ["f2_p4"],
    "coarse": ["f0_std", "f1_std"],
    "corr": ["c_rms", "c_p4"],
    "input": ["hp_rms", "hp_p4", "hp_p8"],
}


def inputs(rows: list[dict], names: list[str]) -> torch.Tensor:
    """[frames, d]: the logs of the chosen statistics, as the gate reads its spread (+1e-4)."""
    columns = []
    for key in (k for name in names for k in STATS[name]):
        value = torch.stack([torch.as_tensor(row[key], dtype=torch.float32).reshape(-1) for row in rows])
        columns.append(value.add(1e-4).log())
    return torch.cat(columns, 1)


def gain_db(ee: torch.Tensor | float, gce: torch.Tensor, ggcc: torch.Tensor) -> torch.Tensor:
    """PSNR gain (dB) of blurry + g·c over blurry, from |e|², g<c,e> and g²|c|² (e = sharp - blurry)."""
    return -10 * torch.log10((ee - 2 * gce + ggcc) / ee)


def gains(rows: list[dict], share: torch.Tensor) -> torch.Tensor:
    """Each frame's PSNR gain (dB) with `share` of its correction (floats, no clamp)."""
    ee, ce, cc = (torch.tensor([row[k] for row in rows], dtype=torch.float64) for k in ("ee", "ce", "cc"))
    g = share.double().view(-1)
    return gain_db(ee, g * ce, g * g * cc)


@dataclass
class FittedGate:
    """A gate fitted on the logs of the `names` statistics, standardised by `mean`, `std`."""

    names: list[str]
    net: torch.nn.Sequential
    mean: torch.Tensor
    std: torch.Tensor

    def __call__(self, rows: list[dict]) -> torch.Tensor:
        return torch.sigmoid(self.net((inputs(rows, self.names) - self.mean) / self.std))

    def into(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's weights with this gate as its frame gate (variant `f2`): the
        standardisation folded into the first layer, the model's gate gain out of the last."""
        first, last = self.net[0], self.net[2]
        state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        with torch.no_grad():
            state["gate.fc1.weight"] = first.weight / self.std
            state["gate.fc1.bias"] = first.bias - (first.weight / self.std) @ self.mean
            state["gate.fc2.weight"] = last.weight / GATE_GAIN
            state["gate.fc2.bias"] = last.bias / GATE_GAIN
        return state


def fit(rows: list[dict], names: list[str], args: argparse.Namespace, seed: int) -> FittedGate:
    """A gate MLP (standardised inputs → hidden ReLU → sigmoid) that maximises the training
    frames' mean gain, `mild` frames weighted `args.mild` times as much as `default` ones."""
    torch.manual_seed(seed)
    weight = torch.tensor([args.mild if row["blur"] == "mild" else 1.0 for row in rows], dtype=torch.float64)
    weight = weight / weight.sum()
    x = inputs(rows, names)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    hidden = args.hidden
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=args.decay)
    z = (x - mean) / std
    for _ in range(args.steps):
        loss = -(weight * gains(rows, torch.sigmoid(net(z)))).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return FittedGate(names, net, mean, std)


def model_share(model: torch.nn.Module, rows: list[dict]) -> torch.Tensor:
    """The shares the model's own frame gate gives the frames."""
    with torch.no_grad():
        return model.gate.share(torch.stack([row["f2_std"] for row in rows]).float())


def report(label: str, rows: list[dict], share: torch.Tensor) -> None:
    print_gains(label, rows, gains(rows, share).tolist())


def print_gains(label: str, rows: list[dict], values: list[float]) -> None:
    """Mean gains per (blur, draw), and per blur over the draws."""
    groups: dict[tuple[str, int], list[float]] = {}
    blurs: dict[str, list[float]] = {}
    for row, value in zip(rows, values, strict=True):
        groups.setdefault((row["blur"], row["seed"]), []).append(value)
        blurs.setdefault(row["blur"], []).append(value)
    cells = "  ".join(f"{b} {s}: {sum(v) / len(v):+.3f}" for (b, s), v in sorted(groups.items()))
    means = " / ".join(f"{b} {sum(v) / len(v):+.3f}" for b, v in sorted(blurs.items()))
    print(f"{label:32s} {cells}  | means {means}", flush=True)


def evaluate(args: argparse.Namespace) -> None:
    train, test = [row for path in args.train for row in torch.load(path)], torch.load(args.test)
    model = load_model(args.model, args.weights).eval()
    report("the model's gate", test, model_share(model, test))
    report("a perfect per-frame gate", test, torch.tensor([max(row["ce"] / row["cc"], 0.0) for row in test]))
    for names in args.variant:
        fits = [fit(train, names.split("+"), args, seed) for seed in range(args.inits)]
        with torch.no_grad():
            objective = [gains(train, gate(train)).mean().item() for gate in fits]
            for index, (one, value) in enumerate(zip(fits, objective, strict=True)):
                report(f"{names} init {index} ({value:.4f})", test, one(test))
            gate = fits[objective.index(max(objective))]  # chosen on the training frames alone
            report(f"{names}, chosen (train)", train, gate(train))
            report(f"{names}, chosen", test, gate(test))
    if args.export:
        if args.variant != ["f2"] or args.hidden != GATE_HIDDEN:
            raise SystemExit(f"--export fits the model's own gate: --variant f2 --hidden {GATE_HIDDEN} only")
        state = gate.into(model)
        model.load_state_dict(state)
        report("exported gate", test, model_share(model, test))
        meta = safe_open(args.weights, "pt").metadata() or {}
        save_weights(state, args.export, get_spec(args.model), metadata=meta, half=True)
        print(f"wrote {args.export}")


def collect_blocks(args: argparse.Namespace) -> None:
    """Per frame, for a gate by regions: the full-size features' spread per region of
    `BLOCKS` feature pixels and over the frame, <c,e> and |c|² summed per feature pixel (r x r
    pixels), and |e|² over the frame."""
    model = open_gate(args.model, args.weights)
    seen: dict[str, torch.Tensor] = {}
    model.gate.register_forward_hook(lambda _m, inp, _o: seen.__setitem__("f", inp[0]))
    r = model.scales[-1].r
    rows = []
    for row, blurry, sharp in frames(args):
        with torch.no_grad():
            c = model(blurry) - blurry
        f, e = seen["f"].float(), sharp - blurry
        size = (f.shape[-2] * r, f.shape[-1] * r)
        per_pixel = torch.stack([(c * e).sum(1), c.pow(2).sum(1)], 1)
        per_pixel = F.pad(per_pixel, (0, size[1] - c.shape[-1], 0, size[0] - c.shape[-2]))
        row |= {"ee": e.pow(2).sum().item(), "ce_cc": F.avg_pool2d(per_pixel, r)[0] * r * r}
        row["f_std"] = f.std(dim=(2, 3), correction=0)[0]
        for block in BLOCKS:
            regions = (-(-f.shape[-2] // block), -(-f.shape[-1] // block))
            mean = F.adaptive_avg_pool2d(f, regions)[0]
            square = F.adaptive_avg_pool2d(f * f, regions)[0]
            row[f"std{block}"] = (square - mean * mean).clamp(min=0).sqrt()
        rows.append(row)
    torch.save(rows, args.out)


def block_inputs(row: dict, block: int, local: bool) -> torch.Tensor:
    """[regions, d]: log spreads of a frame's regions (where `local`) and of the whole frame."""
    whole = row["f_std"].add(1e-4).log()
    spread = row[f"std{block}"]
    glob = whole.view(-1, 1, 1).expand_as(spread)
    x = torch.cat([spread.add(1e-4).log(), glob]) if local else glob
    return x.flatten(1).T


class RegionFit(torch.nn.Module):
    """The gate by regions as fitted: an MLP per region, its shares bilinearly upsampled to
    the feature pixels (the share of each r x r block of pixels)."""

    def __init__(self, d: int, hidden: int, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor, regions: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        logit = self.fc2(torch.relu(self.fc1((x - self.mean) / self.std)))
        share = torch.sigmoid(logit).T.reshape(1, 1, *regions)
        return F.interpolate(share, size=size, mode="bilinear", align_corners=False)[0, 0]


def region_gain(gate: RegionFit, row: dict, x: torch.Tensor, block: int) -> torch.Tensor:
    ce, cc = row["ce_cc"]
    g = gate(x, tuple(row[f"std{block}"].shape[1:]), tuple(ce.shape))
    return gain_db(row["ee"], (g * ce).sum(), (g * g * cc).sum())


def fit_blocks(args: argparse.Namespace) -> None:
    train, test = [row for path in args.train for row in torch.load(path)], torch.load(args.test)
    torch.manual_seed(args.seed)
    for variant in args.variant:
        block, local = int(variant.split(":")[0]), variant.endswith(":local")
        xs = [block_inputs(row, block, local) for row in train]
        every = torch.cat(xs)
        gate = RegionFit(every.shape[1], args.hidden, every.mean(0), every.std(0).clamp(min=1e-6))
        optimiser = torch.optim.AdamW(gate.parameters(), lr=3e-3, weight_decay=args.decay)
        weight = [args.mild if row["blur"] == "mild" else 1.0 for row in train]
        for _ in range(args.steps):
            pick = torch.randint(len(train), (args.batch,)).tolist()
            total = sum(weight[i] * region_gain(gate, train[i], xs[i], block) for i in pick)
            loss = -total / sum(weight[i] for i in pick)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            for label, rows in (("train", train), ("test", test)):
                values = [region_gain(gate, row, block_inputs(row, block, local), block).item() for row in rows]
                print_gains(f"{variant} {label}", rows, values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("collect", "collect-blocks"):
        c = sub.add_parser(command)
        c.add_argument("out")
        c.add_argument("--model", default="msdeblur-s")
        c.add_argument("--weights", default="weights/msdeblur-s.safetensors")
        c.add_argument("--split", default="train")
        c.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
        c.add_argument("--data", action="append", default=[], help="default: sharp:../shared/data/train_sharp")
    for command in ("fit", "fit-blocks"):
        f = sub.add_parser(command)
        f.add_argument("test", help="the held-out frames (`collect --split test`), only reported")
        f.add_argument("--train", action="append", required=True, help="frames to fit on (`collect`), repeatable")
        f.add_argument(
            "--variant",
            action="append",
            default=[],
            help="fit: statistics joined by +, e.g. f2+corr; fit-blocks: BLOCK:local or BLOCK:frame",
        )
        f.add_argument("--hidden", type=int, default=GATE_HIDDEN)
        f.add_argument("--steps", type=int, default=2000)
        f.add_argument("--decay", type=float, default=1e-2)
        f.add_argument("--mild", type=float, default=1.0, help="weight of a mild frame against a default one")
    fit_parser, blocks_parser = sub.choices["fit"], sub.choices["fit-blocks"]
    fit_parser.add_argument("--model", default="msdeblur-s")
    fit_parser.add_argument("--weights", default="weights/msdeblur-s.safetensors")
    fit_parser.add_argument("--inits", type=int, default=1, help="fits from as many seeds; the best on --train is kept")
    fit_parser.add_argument("--export", help="write the weights with the fitted gate here (--variant f2)")
    blocks_parser.add_argument("--batch", type=int, default=64, help="frames per step")
    blocks_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.command.startswith("collect"):
        args.data = args.data or ["sharp:../shared/data/train_sharp"]
        torch.set_num_threads(2)
    commands = {"collect": collect, "collect-blocks": collect_blocks, "fit": evaluate, "fit-blocks": fit_blocks}
    commands[args.command](args)


if __name__ == "__main__":
    main()
