"""Device, precision and automatic model choice.

`--model auto` picks the best model the hardware can run: UHDVD on a CUDA GPU with tensor
cores and room for its activations at the frame size, RT-Focuser otherwise (CPU, old or
small GPUs). The decision and its reason are shown on the status line and, when it is a
fallback, recorded in the run report.
"""

from __future__ import annotations

import ctypes
import platform
from dataclasses import dataclass

import torch

from streamdeblur.errors import UsageError
from streamdeblur.models import get_spec
from streamdeblur.pipeline import tiling

PREFERRED = "uhdvd"  # the best model, when the hardware can run it
LIGHT = "rt-focuser"  # the fallback for CPUs and small GPUs
MIN_COMPUTE = (7, 0)  # tensor cores (fp16) from Volta on; older GPUs are too slow for UHDVD
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class ModelChoice:
    name: str
    reason: str
    fallback: str | None = None  # why a lighter model than the preferred one runs (auto only)


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
    return precision


def choose_model(requested: str, device: torch.device, frame_size: tuple[int, int], precision: str) -> ModelChoice:
    """The model to run: the requested one, or for `auto` the best one this device can run
    (whole frames of `frame_size` (W, H) at `precision`, without tiling)."""
    if requested != "auto":
        get_spec(requested)
        return ModelChoice(requested, "requested")
    if device.type != "cuda":
        return ModelChoice(LIGHT, "auto", f"auto: no CUDA GPU, {LIGHT} is the CPU model")
    props = torch.cuda.get_device_properties(device)
    if (props.major, props.minor) < MIN_COMPUTE:
        return ModelChoice(
            LIGHT,
            "auto",
            f"auto: {props.name} (compute {props.major}.{props.minor}) has no tensor cores for {PREFERRED}",
        )
    w, h = frame_size
    need, budget = tiling.frame_bytes(get_spec(PREFERRED), (h, w), DTYPES[precision]), tiling.memory_budget(device)
    if need > budget:
        return ModelChoice(
            LIGHT,
            "auto",
            f"auto: {PREFERRED} needs ~{need / 2**30:.1f} GiB at {w}x{h} in {precision}, "
            f"{props.name} can spare {budget / 2**30:.1f} GiB",
        )
    return ModelChoice(PREFERRED, f"auto: {props.name} runs {PREFERRED}")


def describe_device(device: torch.device) -> str:
    """`cuda:0 (NVIDIA H100 80GB HBM3)` or `cpu (x86_64, 2 threads)`."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def tune_allocator() -> bool:
    """Keep freed frame-sized buffers in the heap (glibc only; a no-op elsewhere).

    By default glibc hands every large freed block back to the kernel, and the next frame
    page-faults it in again; on CPU that costs as much as a model's arithmetic
    (docs/benchmarks.md). Raising the mmap and trim thresholds keeps them for reuse. It is a
    process-wide setting, made once by the command-line tool.
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    mmap_max = 32 * 2**20  # glibc's ceiling for the mmap threshold on 64-bit
    return bool(libc.mallopt(m_mmap_threshold, mmap_max)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
