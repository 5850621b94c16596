"""Which model runs: the requested one, or for `--model auto` the best one this hardware can run.

`--model auto` picks, among the models whose weights are installed, the one of highest
`auto_rank` the hardware can run at the frame size: on a GPU, one it has the compute
capability and memory for; on a CPU, one whose cost per frame (all `--views` of it) stays
within `CPU_MACS_PER_FRAME` (else the cheapest). It never picks a model without weights. The
decision and its reason are shown on the status line and, where better-ranked models were
passed over, recorded in the run report as `fallback`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from streamdeblur.core.errors import WeightsError
from streamdeblur.engine import tiling
from streamdeblur.engine.device import DTYPES, describe_device
from streamdeblur.engine.ensemble import in_views
from streamdeblur.models import ModelSpec, get_spec, list_models

# About 0.1 s per frame on 2 cores in fp32 for the costliest light model (42 GMAC at 640x360
# in 0.19 s, the README's table): a costlier model is not chosen on a CPU while a cheaper one
# with weights is installed.
CPU_MACS_PER_FRAME = 20e9


@dataclass(frozen=True)
class ModelChoice:
    name: str
    reason: str
    fallback: str | None = None  # why a lighter model than the preferred one runs (auto only)


def choose_model(
    requested: str,
    device: torch.device,
    frame_size: tuple[int, int],
    precision: str,
    has_weights: Callable[[ModelSpec], bool],
    views: int = 1,
) -> ModelChoice:
    """The model to run: the requested one, or for `auto` the best-ranked model with weights
    that this device can run on whole frames of `frame_size` (W, H) at `precision`, in `views`
    views each."""
    if requested != "auto":
        get_spec(requested)
        return ModelChoice(requested, "requested")
    ranked = sorted((s for s in list_models() if s.auto_rank), key=lambda s: -s.auto_rank)
    installed = [s for s in ranked if has_weights(s)]
    if not installed:
        names = ", ".join(s.name for s in ranked)
        raise WeightsError(f"--model auto: no model has weights installed ({names}); pass --model NAME --weights PATH")
    passed_over = [f"{s.name} has no weights" for s in ranked[: ranked.index(installed[0])]]
    for spec in installed:
        why_not = unsuitable(spec, device, frame_size, precision, views)
        if why_not is None:
            fallback = f"auto: {'; '.join(passed_over)}" if passed_over else None
            return ModelChoice(spec.name, f"auto: the best model with weights for {describe_device(device)}", fallback)
        passed_over.append(why_not)
    cheapest = min(installed, key=lambda s: s.macs_per_pixel)
    return ModelChoice(cheapest.name, "auto: the lightest model with weights", f"auto: {'; '.join(passed_over)}")


def frame_macs(spec: ModelSpec, frame_size: tuple[int, int], views: int = 1) -> float:
    """Multiply-accumulates to run `spec` on one frame of `frame_size` (W, H) in `views` views."""
    w, h = frame_size
    return spec.macs_per_pixel * w * h * views


def unsuitable(
    spec: ModelSpec, device: torch.device, frame_size: tuple[int, int], precision: str, views: int = 1
) -> str | None:
    """Why `device` should not run `spec` on frames of `frame_size` (W, H) in `views` views, or
    None. Views run one after another, so they add time, not memory."""
    w, h = frame_size
    if device.type != "cuda":
        macs = frame_macs(spec, frame_size, views)
        if macs > CPU_MACS_PER_FRAME:
            return f"{spec.name} needs {macs / 1e9:.0f} GMAC per {w}x{h} frame{in_views(views)}, too slow on a CPU"
        return None
    props = torch.cuda.get_device_properties(device)
    if spec.min_compute and (props.major, props.minor) < spec.min_compute:
        return f"{props.name} (compute {props.major}.{props.minor}) is too old for {spec.name}"
    need, budget = tiling.frame_bytes(spec, (h, w), DTYPES[precision]), tiling.memory_budget(device)
    if need > budget:
        return (
            f"{spec.name} needs ~{need / 2**30:.1f} GiB at {w}x{h} in {precision}, "
            f"{props.name} can spare {budget / 2**30:.1f} GiB"
        )
    return None


def lighter_model(spec: ModelSpec, has_weights: Callable[[ModelSpec], bool]) -> ModelSpec | None:
    """The best-ranked model with weights that costs less per pixel than `spec` (live mode's
    fallback when `spec` cannot keep up with the source), or None."""
    lighter = [s for s in list_models() if s.auto_rank and s.macs_per_pixel < spec.macs_per_pixel and has_weights(s)]
    return max(lighter, key=lambda s: s.auto_rank, default=None)
