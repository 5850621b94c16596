"""Overlapping tiles with feathered blending, for frames too large for the device's memory.

A model's activations grow with the frame (UHDVD's level-1 decoder alone holds 32-channel
maps at twice the input size: 4 GB per map at 4K in fp32). When a frame would not fit, it is
cut into overlapping tiles that each fit; every tile goes through the model with the same
window of the previous frame (recurrent models), and the outputs are blended with weights
that ramp linearly across the overlap, so there is no visible seam. Frames that fit are never
tiled: tiling costs the overlap's extra work.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch

OVERLAP = 32  # pixels shared by neighbouring tiles: room for the ramp and the models' border effects
MEMORY_SHARE = 0.6  # of the free memory one frame's activations may use


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length`, neighbours sharing >= `overlap`."""
    if tile >= length:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def ramp(start: int, tile: int, overlap: int, total: int) -> torch.Tensor:
    """1-D blend weights of one tile: linear ramps where it overlaps a neighbour, 1 elsewhere."""
    w = torch.ones(tile)
    edge = torch.linspace(0, 1, overlap + 2)[1:-1]
    if start > 0:
        w[:overlap] = edge
    if start + tile < total:
        w[-overlap:] = edge.flip(0)
    return w


def tiled(
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    prev: torch.Tensor | None,
    tile: tuple[int, int],
    overlap: int = OVERLAP,
) -> torch.Tensor:
    """`run(x, prev)` evaluated tile by tile over [B, C, H, W] and blended into one output."""
    h, w = x.shape[-2:]
    th, tw = min(tile[0], h), min(tile[1], w)
    out = torch.zeros_like(x, dtype=torch.float32)
    weight = torch.zeros((1, 1, h, w), dtype=torch.float32, device=x.device)
    for top in tile_starts(h, th, overlap):
        for left in tile_starts(w, tw, overlap):
            window = (..., slice(top, top + th), slice(left, left + tw))
            y = run(x[window], None if prev is None else prev[window]).float()
            wy = (ramp(top, th, overlap, h)[:, None] * ramp(left, tw, overlap, w)).to(x.device)
            out[window] += y * wy
            weight[window] += wy
    return (out / weight).to(x.dtype)


def free_memory(device: torch.device) -> int:
    """Bytes the device can still give us: CUDA's free memory, or the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def choose_tile(frame: tuple[int, int], bytes_per_pixel: float, budget: int, multiple: int) -> tuple[int, int] | None:
    """The largest tile (H, W), a multiple of `multiple`, whose activations fit in `budget`;
    None when the whole frame fits."""
    h, w = frame
    if bytes_per_pixel <= 0 or h * w * bytes_per_pixel <= budget:
        return None
    smallest = -(-4 * OVERLAP // multiple) * multiple  # ramps need room: at least 4 overlaps wide
    side = max(smallest, int(math.sqrt(budget / bytes_per_pixel)) // multiple * multiple)
    return min(side, h), min(side, w)
