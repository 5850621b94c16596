"""Overlapping tiles with feathered blending, for frames too large for the device's memory.

A model's activations grow with the frame (UHDVD's level-1 decoder alone holds 32-channel
maps at twice the input size: 4 GB per map at 4K in fp32). When a frame would not fit, it is
cut into overlapping tiles that each fit; every tile goes through the model with the same
window of the previous frame (recurrent models), and the outputs are blended with weights
that ramp linearly across the overlap, so there is no visible seam. Frames that fit are never
tiled: tiling costs the overlap's extra work.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import torch

from streamdeblur.models.registry import ModelSpec

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


@functools.lru_cache(maxsize=8)
def _plan(
    size: tuple[int, int], tile: tuple[int, int], overlap: int, device: torch.device
) -> list[tuple[tuple, torch.Tensor]]:
    """Each tile's window and blend weights, already divided by their sum: a frame size's
    tiling never changes, so it is built (and moved to the device) once."""
    (h, w), (th, tw) = size, tile
    tiles = []
    total = torch.zeros((h, w))
    for top in tile_starts(h, th, overlap):
        for left in tile_starts(w, tw, overlap):
            window = (..., slice(top, top + th), slice(left, left + tw))
            weights = ramp(top, th, overlap, h)[:, None] * ramp(left, tw, overlap, w)
            total[window] += weights
            tiles.append((window, weights))
    return [(window, (weights / total[window]).to(device)) for window, weights in tiles]


def tiled(
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    prev: torch.Tensor | None,
    tile: tuple[int, int],
    overlap: int = OVERLAP,
) -> torch.Tensor:
    """`run(x, prev)` evaluated tile by tile over [B, C, H, W] and blended into one output."""
    h, w = x.shape[-2:]
    tiles = _plan((h, w), (min(tile[0], h), min(tile[1], w)), overlap, x.device)
    out = torch.zeros_like(x, dtype=torch.float32)
    for window, weights in tiles:
        out[window] += run(x[window], None if prev is None else prev[window]).float() * weights
    return out.to(x.dtype)


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


def frame_bytes(spec: ModelSpec, size: tuple[int, int], dtype: torch.dtype) -> int:
    """Rough peak activation memory of one (H, W) frame through `spec`'s model (inference),
    from the spec's per-pixel figure at the model's padded size."""
    m = spec.input_multiple
    h, w = (-(-s // m) * m for s in size)
    return int(spec.peak_elements_per_pixel * h * w * dtype.itemsize)


def memory_budget(device: torch.device) -> int:
    """Bytes one frame's activations may plan to use on `device`: a share of what is free."""
    return int(MEMORY_SHARE * free_memory(device))


def tile_for(spec: ModelSpec, size: tuple[int, int], dtype: torch.dtype, budget: int) -> tuple[int, int] | None:
    """The largest tile (H, W), a multiple of the model's input multiple, whose activations fit
    in `budget`; None when the whole (H, W) frame fits."""
    if frame_bytes(spec, size, dtype) <= budget:
        return None
    h, w = size
    multiple = spec.input_multiple
    bytes_per_pixel = spec.peak_elements_per_pixel * dtype.itemsize
    smallest = -(-4 * OVERLAP // multiple) * multiple  # ramps need room: at least 4 overlaps wide
    side = max(smallest, int(math.sqrt(budget / bytes_per_pixel)) // multiple * multiple)
    return min(side, h), min(side, w)
