"""RT-Focuser on CPU: the official-structure eval module against our `for_inference()` form.

    python benchmarks/rt_focuser_cpu.py [--size 256] [--runs 30] [--warmup 5] [--threads 2]

Both run fp32 under torch.inference_mode on the same input; runs alternate between the two so
that drift in machine load hits both alike. Prints a table and one JSON line. Speed does not
depend on the weights' values, so random ones are used unless --weights is given.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from streamdeblur.core.allocator import tune_allocator
from streamdeblur.engine.weights import load_model


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (falls back to platform's guess)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="square input side (pixels)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per module")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per module first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--glibc-default", action="store_true", help="keep glibc's default allocator thresholds (the CLI tunes them)"
    )
    parser.add_argument("--weights", default=None, help="optional weights (speed is the same)")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    tuned = False if args.glibc_default else tune_allocator()
    reference = load_model("rt-focuser", args.weights).eval()
    ours = reference.for_inference()
    modules = {"reference (official structure, eval)": reference, "ours (for_inference)": ours}
    x = torch.rand(1, 3, args.size, args.size)

    times: dict[str, list[float]] = {name: [] for name in modules}
    with torch.inference_mode():
        diff = (reference(x) - ours(x)).abs().max().item()
        for module in modules.values():
            for _ in range(args.warmup):
                module(x)
        for _ in range(args.runs):
            for name, module in modules.items():
                start = time.perf_counter()
                module(x)
                times[name].append((time.perf_counter() - start) * 1000)

    median = {name: statistics.median(t) for name, t in times.items()}
    ref_ms, ours_ms = median.values()
    print(
        f"RT-Focuser v1 Standard, {args.size}x{args.size}, fp32, {args.threads} threads, "
        f"{cpu_name()}, torch {torch.__version__}, allocator {'tuned' if tuned else 'glibc default'}"
    )
    print(f"{'module':40} {'median ms':>10} {'min ms':>8} {'fps':>7}")
    for name, t in times.items():
        print(f"{name:40} {median[name]:10.1f} {min(t):8.1f} {1000 / median[name]:7.2f}")
    print(f"speed-up {ref_ms / ours_ms:.2f}x, max |difference| {diff:.2e}")
    print(
        json.dumps(
            {
                "benchmark": "rt_focuser_cpu",
                "size": args.size,
                "threads": args.threads,
                "runs": args.runs,
                "warmup": args.warmup,
                "cpu": cpu_name(),
                "torch": torch.__version__,
                "reference_ms": round(ref_ms, 2),
                "ours_ms": round(ours_ms, 2),
                "speedup": round(ref_ms / ours_ms, 3),
                "max_abs_diff": diff,
                "allocator": "tuned" if tuned else "glibc-default",
            }
        )
    )


if __name__ == "__main__":
    main()
