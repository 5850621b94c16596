"""Device and precision: what `--device` and `--precision` resolve to, threads, the allocator.

Facts about the machine and the process, no policy: which model runs is choice.py's job.
"""

from __future__ import annotations

import platform

import cv2
import torch

from streamdeblur.core.errors import UsageError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N`; a CUDA request without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: no CUDA GPU is available to this torch build")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is fp16 on CUDA (10-bit mantissa: enough for 8- and 10-bit video) and fp32 on CPU."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--precision bf16: {describe_device(device)} does not support bf16")
    if device.type == "cpu" and precision != "fp32" and not cpu_has(CPU_NATIVE[precision]):
        # measured: one 128x72 frame took 13.7 s in fp16 against 0.14 s in fp32 (issue #13)
        raise UsageError(
            f"--precision {precision}: this CPU has no native {precision} arithmetic, so torch emulates it "
            "about 100x slower than fp32; use --precision fp32 (the CPU default)"
        )
    return precision


# /proc/cpuinfo flags of the instructions that make a precision fast on a CPU
CPU_NATIVE = {"fp16": ("avx512_fp16", "amx_fp16"), "bf16": ("avx512_bf16", "amx_bf16")}


def cpu_has(flags: tuple[str, ...]) -> bool:
    """Whether the CPU reports any of `flags` (Linux /proc/cpuinfo; False elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            reported = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in reported for flag in flags)


def describe_device(device: torch.device) -> str:
    """`cuda:0 (NVIDIA H100 80GB HBM3)` or `cpu (x86_64, 2 threads)`."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def set_threads(threads: int) -> None:
    """Use `threads` CPU threads for the model (torch) and the filters (OpenCV), process-wide."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
