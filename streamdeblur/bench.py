"""`streamdeblur bench`: the model alone, timed honestly.

Warm-up runs first (cuDNN autotuning, allocator growth, lazy init), then the median of
several timed runs. On CUDA each run is timed with CUDA events and waited for, so the figure
is GPU latency and not the time to queue kernels (the UHDVD paper's 35 fps was measured
without a synchronize). The input is random: speed does not depend on the weights.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from streamdeblur.core.errors import UsageError
from streamdeblur.engine.build import EngineOptions, build_engine
from streamdeblur.engine.choice import frame_macs
from streamdeblur.engine.device import describe_device, set_threads


def parse_size(text: str) -> tuple[int, int]:
    """`1280x720` → (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 1 or h < 1:
        raise UsageError(f"bad size {text!r}: width and height must be positive")
    return w, h


def run_bench(
    model: str,
    size: tuple[int, int],
    device: str = "auto",
    precision: str = "auto",
    runs: int = 10,
    warmup: int = 3,
    threads: int | None = None,
    views: int = 1,
) -> dict[str, Any]:
    """Time one forward pass at `size` (`views` of it: `--views`); returns the figures
    `bench --json` prints."""
    if threads:
        set_threads(threads)
    runner = build_engine(EngineOptions(model, None, device, precision, views), size, untrained=True).runner
    spec, dev, prec, net = runner.spec, runner.device, runner.precision, runner.model
    w, h = size
    x = torch.rand(1, 3, h, w, device=dev).to(runner.dtype).contiguous(memory_format=torch.channels_last)
    args = (x, x) if spec.recurrent else (x,)

    def once() -> float:
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            net(*args)
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        net(*args)
        return 1000 * (time.perf_counter() - t0)

    with torch.inference_mode():
        for _ in range(warmup):
            once()
        times = [once() for _ in range(runs)]
    median = statistics.median(times)
    macs = frame_macs(spec, size, views)
    return {
        "model": spec.name,
        **({"views": views} if views > 1 else {}),
        "device": describe_device(dev),
        "size": f"{w}x{h}",
        "precision": prec,
        "latency_ms": round(median, 3),
        "fps": round(1000 / median, 3),
        "min_ms": round(min(times), 3),
        "max_ms": round(max(times), 3),
        "runs": runs,
        "warmup": warmup,
        "gmacs": round(macs / 1e9, 2),
        "tflops": round(2 * macs / (median / 1000) / 1e12, 3),
        "timing": "cuda-events" if dev.type == "cuda" else "perf_counter",
    }
