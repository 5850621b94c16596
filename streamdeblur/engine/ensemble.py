"""Self-ensemble: a model run on several views of each frame (flipped, transposed, shifted),
each output turned back, and the outputs averaged (EDSR's geometric self-ensemble, with shifts).

A network trained on all eight orientations still answers each a little differently, and
the average of its answers is better than any one. A network that works on space-to-depth
maps (stride p) also answers differently depending on where the frame falls on its p x p
grid: the same picture one pixel to the right is a different input to it. For such a model
(`ModelSpec.shift_period` = p) the first views are the frame shifted by fractions of p along
the diagonal, which average out that grid; orientations multiply them. Our shipped light
model gains 0.08 dB on the held-out split in four such views, as much as in eight
orientations (docs/training.md), at four times the compute. `--views N` runs a job this
way; `train --teacher-views N` teaches with it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.core.errors import UsageError

VIEWS = (1, 2, 4, 8)

Model = Callable[[torch.Tensor], torch.Tensor]


def check_views(views: int, flag: str = "--views") -> None:
    """A one-line usage error unless `views` is one of VIEWS."""
    if views not in VIEWS:
        raise UsageError(f"{flag} must be one of {', '.join(map(str, VIEWS))}, not {views}")


def in_views(views: int) -> str:
    """ " in N views" for a run in more than one view, else "": for messages and descriptions."""
    return f" in {views} views" if views > 1 else ""


def view_table(views: int, period: int = 1) -> list[tuple[int, int]]:
    """(orientation, diagonal shift in pixels) of each view: up to `period` shifts evenly
    spaced over the period, then each of them in further orientations (see `_oriented`).
    For a shift-invariant model (`period` 1): orientations alone, the left-right mirror first."""
    shifts = min(views, period)
    return [(i // shifts, (i % shifts) * period // shifts) for i in range(views)]


def _shifted(model: Model, x: torch.Tensor, shift: int) -> torch.Tensor:
    """`model`'s output for `x` moved `shift` pixels right and down (the new border mirrored),
    moved back."""
    if not shift:
        return model(x)
    h, w = x.shape[-2:]
    return model(F.pad(x, (shift, 0, shift, 0), mode="reflect"))[..., shift : shift + h, shift : shift + w]


def _oriented(model: Model, x: torch.Tensor, orientation: int) -> torch.Tensor:
    """`model`'s output for orientation `orientation` (0 to 7) of `x`, turned back: bit 1 flips
    left-right, bit 2 up-down, bit 4 transposes."""
    dims = [d for d, bit in ((-1, 1), (-2, 2)) if orientation & bit]
    y = x.transpose(-1, -2) if orientation & 4 else x
    out = model(y.flip(dims) if dims else y)
    out = out.flip(dims) if dims else out
    return out.transpose(-1, -2) if orientation & 4 else out


def self_ensemble(model: Model, x: torch.Tensor, views: int, period: int = 1) -> torch.Tensor:
    """`model`'s output for [N, 3, h, w] frames averaged over `view_table(views, period)`, in
    float32."""
    total = torch.zeros_like(x, dtype=torch.float32)
    for orientation, shift in view_table(views, period):
        total += _oriented(lambda y, s=shift: _shifted(model, y, s).float(), x, orientation)
    return total / views


class SelfEnsemble(nn.Module):
    """A frame-by-frame model seen through `views` views; the output in its dtype."""

    def __init__(self, model: nn.Module, views: int, period: int = 1) -> None:
        super().__init__()
        self.model = model
        self.views = views
        self.period = period

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        return self_ensemble(self.model, x, self.views, self.period).to(x.dtype)
