"""Geometric self-ensemble: a model run on flipped and transposed views of each frame, and the
outputs, turned back, averaged (EDSR's trick).

A network trained on all eight orientations still answers each a little differently, and
the average of its answers is better than any one: our shipped light model gains about
0.085 dB on the held-out split with eight views (`benchmarks/draws.py --views 8`), at eight
times the compute. `--views N` runs a job this way; `train --teacher-views N` teaches with it.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from streamdeblur.core.errors import UsageError

VIEWS = (1, 2, 4, 8)  # the frame; and its left-right mirror; all four flips; and their transposes


def check_views(views: int, flag: str = "--views") -> None:
    """A one-line usage error unless `views` is one of VIEWS."""
    if views not in VIEWS:
        raise UsageError(f"{flag} must be one of {', '.join(map(str, VIEWS))}, not {views}")


def self_ensemble(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, views: int) -> torch.Tensor:
    """`model`'s output for [N, 3, h, w] frames, averaged over the first `views` of the eight
    flips and transposes (each view's output turned back before the average), in float32."""
    total = torch.zeros_like(x, dtype=torch.float32)
    for view in range(views):
        dims = [d for d, bit in ((-1, 1), (-2, 2)) if view & bit]
        y = x.transpose(-1, -2) if view & 4 else x
        out = model(y.flip(dims) if dims else y).float()
        out = out.flip(dims) if dims else out
        total += out.transpose(-1, -2) if view & 4 else out
    return total / views


class SelfEnsemble(nn.Module):
    """A frame-by-frame model seen through `views` orientations; the output in its dtype."""

    def __init__(self, model: nn.Module, views: int) -> None:
        super().__init__()
        self.model = model
        self.views = views

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        return self_ensemble(self.model, x, self.views).to(x.dtype)
