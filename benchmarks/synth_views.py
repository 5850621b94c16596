"""The synthetic blur's cost: sub-frame views rendered one per call, or many per call.

    python benchmarks/synth_views.py [--data sharp:../shared/data/train_sharp] [--batch 8] [--crop 192]

Makes training batches (`train/batches.py`, the `msdeblur-s` recipe's blur mix) on the CPU,
one thread, with `synth.views_per_call` at 1 (what a CPU uses) and at the count a GPU would
use, and prints the seconds per batch of each, the torch operators one batch runs (on a
GPU each operator is at least one kernel launch, which is what bounds its pace) and the
operator that takes most of its time, with its share.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from streamdeblur.train import synth
from streamdeblur.train.batches import Batches
from streamdeblur.train.config import TrainConfig
from streamdeblur.train.datasets import open_dataset

BATCHES = 5


def gpu_count(linear: torch.Tensor, size: tuple[int, int]) -> int:
    """`views_per_call` as on a GPU, for a CPU tensor."""
    return max(1, synth.GPU_VIEW_ELEMENTS // (linear.shape[0] * size[0] * size[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=192)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TrainConfig(
        model="msdeblur-s", data=[args.data], steps=BATCHES + 2, batch=args.batch, crop=args.crop
    ).resolved()
    batches = Batches([open_dataset(args.data, "train")], config, torch.device("cpu"))
    cpu_count = synth.views_per_call
    for name, count in (("one view per call", cpu_count), ("a GPU's views per call", gpu_count)):
        synth.views_per_call = count
        batches(0)  # warm-up (photos decoded, allocator)
        start = time.perf_counter()
        for step in range(1, BATCHES + 1):
            batches(step)
        seconds = (time.perf_counter() - start) / BATCHES
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            batches(BATCHES + 1)
        events = prof.key_averages()
        operators = sum(e.count for e in events)
        top = max(events, key=lambda e: e.self_cpu_time_total)
        share = top.self_cpu_time_total / sum(e.self_cpu_time_total for e in events)
        print(f"{name:24s} {seconds:.3f} s per batch, {operators} operators per batch, {share:.0%} in {top.key}")
    batches.close()


if __name__ == "__main__":
    main()
