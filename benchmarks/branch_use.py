"""How much a `train --branches` run used its branches, and its training loss by interval.

    python benchmarks/branch_use.py runs/msdeblur-s-58 [--every 1000] [--under scales.2.]

For each checkpoint of the run: the mean and largest absolute BatchNorm scale of the
branches whose names start with `--under` (default: S's full-size scale), and, with the
live weights folded, how far each branched convolution's weights moved from the convolution
beside the branches (norm of the difference over the norm of the convolution's weights:
mean, smallest, largest). Then the run's training loss (`log.csv`), averaged over each
`--every` steps: the figures docs/training.md compares with a run without branches (for
which, given its folder, only the loss is printed).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from streamdeblur.models import create_model
from streamdeblur.models.layers import BranchedConv
from streamdeblur.train import checkpoint


def branch_use(folder: Path, under: str) -> str:
    tensors, state = checkpoint.load(folder)
    live, ema, _ = checkpoint.unpack(tensors)
    weights = ema if ema is not None else live
    scales = [
        v.abs().mean().item()
        for k, v in weights.items()
        if k.startswith(under) and k.endswith((".wide.1.weight", ".point.1.weight"))
    ]
    model = create_model(state["config"]["model"])
    checkpoint.branch(model)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    moved = [
        ((conv.folded().weight - conv.weight).norm() / conv.weight.norm()).item()
        for conv in model.modules()
        if isinstance(conv, BranchedConv)
    ]
    return (
        f"BN scale |mean| {statistics.mean(scales):.4f}, max {max(scales):.4f}; "
        f"folded change {statistics.mean(moved):.1%} ({min(moved):.1%} to {max(moved):.1%})"
    )


def loss_by_interval(run: Path, every: int) -> list[tuple[int, float]]:
    rows = list(csv.DictReader((run / "log.csv").open()))
    groups: dict[int, list[float]] = {}
    for row in rows:
        step = int(row["step"])
        groups.setdefault(-(-step // every) * every, []).append(float(row["loss"]))
    return [(end, statistics.mean(losses)) for end, losses in sorted(groups.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--under", default="scales.2.")
    args = parser.parse_args()
    folders = sorted((args.run / "checkpoints").glob(f"{checkpoint.PREFIX}*"))
    # a setting of the whole run: read once, from the first checkpoint's state alone
    if folders and json.loads((folders[0] / checkpoint.STATE).read_text())["config"].get("branches"):
        for folder in folders:
            print(f"{folder.name}: {branch_use(folder, args.under)}")
    print("loss: " + ", ".join(f"{end}: {loss:.4g}" for end, loss in loss_by_interval(args.run, args.every)))


if __name__ == "__main__":
    main()
