"""Every model on the CPU, in one run: speed at 640x360 and peak memory at 1920x1080.

    python benchmarks/cpu_models.py [--models NAME ...] [--threads 2] [--runs 10]

Speed is `streamdeblur bench`'s measurement (fp32, the inference form, warm-up runs first,
the median of the timed runs). Peak memory is the resident set of a fresh process that
builds the model's inference form and deblurs one 1920x1080 frame through the product's
model stage (`ModelRunner`: 8-bit in, 8-bit out, tiling when the frame does not fit), read
from the kernel's high-water mark (`ru_maxrss`) minus what the process held before the
frame. Each model is measured in its own process, so none inherits another's heap. Prints
a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
import torch

from streamdeblur.bench import run_bench
from streamdeblur.core.allocator import tune_allocator
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.models import create_model, get_spec, model_names


def peak_mib(name: str, size: tuple[int, int], threads: int) -> dict[str, float]:
    """Run in a child process: the memory one frame of `size` (W, H) adds at its peak."""
    tune_allocator()
    torch.set_num_threads(threads)
    runner = ModelRunner(create_model(name).for_inference(), get_spec(name), torch.device("cpu"), "fp32")
    w, h = size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runner(frame)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"process_peak_mib": round(after, 1), "frame_mib": round(after - before, 1)}


def measure(name: str, threads: int, runs: int) -> dict:
    bench = run_bench(name, (640, 360), device="cpu", precision="fp32", runs=runs, warmup=2, threads=threads)
    command = [sys.executable, __file__, "--peak-of", name, "--threads", str(threads)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    return {"model": name, "ms_640x360": bench["latency_ms"], "fps_640x360": bench["fps"], **json.loads(child.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=model_names(), choices=model_names())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--peak-of", default=None, help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.peak_of:
        print(json.dumps(peak_mib(args.peak_of, (1920, 1080), args.threads)))
        return
    tune_allocator()
    rows = [measure(name, args.threads, args.runs) for name in args.models]
    print("| model | ms per 640x360 frame | fps | peak RSS at 1920x1080 (MiB) | of which the frame |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['ms_640x360']:.1f} | {r['fps_640x360']:.2f} | "
            f"{r['process_peak_mib']:.0f} | {r['frame_mib']:.0f} |"
        )
    print(json.dumps({"threads": args.threads, "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
