"""Where a training step's time goes: making its batch (crops, synthetic blur) or the model.

    python benchmarks/train_step.py [--model msdeblur-s] [--data sharp:../shared/data/train_sharp]
                                    [--batch 16] [--crop 256] [--steps 10] [--device cpu]

Builds a `streamdeblur train` run (the model's recipe, `--batch`, `--crop`) in a temporary
folder and times steps 0 to `--steps` - 1 three times: once to read and keep the photos they
draw (not timed), then each step's batch alone (`Batches`, as a step makes it: the next
batch's crops on a background thread, the blur on the step's own), then whole optimizer
steps (`Trainer.train_step`, which makes its batch too). The model's share (forward,
backward, optimizer, EMA) is the difference. Seconds per step, wall clock, torch's default
threads: what `streamdeblur train` gets on the same machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from streamdeblur.train.config import TrainConfig
from streamdeblur.train.loop import RunOptions, Trainer


def per_step(work, steps: int, device: torch.device) -> float:
    """Mean seconds of `work(step)` over steps 0..steps-1 (synchronised on a GPU)."""
    start = time.perf_counter()
    for step in range(steps):
        work(step)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = TrainConfig(args.model, [args.data], args.steps, batch=args.batch, crop=args.crop, eval_data=[])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, RunOptions(Path(out), args.device))

        def train(step: int) -> None:
            trainer.step = step
            trainer.train_step()

        per_step(trainer.batches, args.steps, trainer.device)  # reads and keeps the photos
        batch = per_step(trainer.batches, args.steps, trainer.device)
        whole = per_step(train, args.steps, trainer.device)
        trainer.batches.close()
    print(
        f"{args.model} on {trainer.device} ({torch.get_num_threads()} threads), batch {args.batch} x {args.crop} px: "
        f"{whole:.3f} s per step = batch {batch:.3f} s ({batch / whole:.0%}) + model {whole - batch:.3f} s"
    )


if __name__ == "__main__":
    main()
