"""Baseline JPEG compression in torch, for the synthetic degradations.

The artefacts of an ordinary encoder (8x8 blocking, ringing, chroma bleed) computed on the
batch's own device, so training data made on the GPU never goes back to the CPU for them.
The tests check it against libjpeg (OpenCV).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The IJG standard quantisation tables (JPEG spec, Annex K).
_LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
           29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
           121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]  # fmt: skip
_CHROMA_Q = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 38
_YCBCR = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]


@dataclass(frozen=True)
class _Constants:
    """The codec's fixed matrices on one device (built once per device: `_constants`)."""

    to_ycc: torch.Tensor  # [3, 3] RGB → YCbCr
    to_rgb: torch.Tensor  # its inverse
    dct: torch.Tensor  # [8, 8] orthonormal DCT-II
    luma_q: torch.Tensor  # [1, 64] the standard tables at quality 50
    chroma_q: torch.Tensor


@functools.lru_cache(maxsize=8)
@torch.inference_mode(False)  # ordinary tensors, even when first called under inference mode
def _constants(device: torch.device) -> _Constants:
    k = torch.arange(8, dtype=torch.float64)
    dct = torch.cos((2 * k[None] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    dct[0] /= math.sqrt(2)
    to_ycc = torch.tensor(_YCBCR, device=device)
    table = lambda base: torch.tensor(base, dtype=torch.float32, device=device)[None]  # noqa: E731
    return _Constants(to_ycc, torch.linalg.inv(to_ycc), dct.float().to(device), table(_LUMA_Q), table(_CHROMA_Q))


def _quant_tables(quality: torch.Tensor, constants: _Constants) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG quality scaling of the standard tables, per image: [N, 8, 8] each."""
    q = quality.clamp(1, 100)[:, None]
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    scaled = lambda base: torch.floor((base * scale + 50) / 100).clamp(1, 255).view(-1, 8, 8)  # noqa: E731
    return scaled(constants.luma_q), scaled(constants.chroma_q)


def _block_codec(plane: torch.Tensor, table: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Quantise a [N, H, W] plane (levels 0..255, H and W multiples of 8) in 8x8 DCT blocks."""
    n, h, w = plane.shape
    blocks = (plane - 128).view(n, h // 8, 8, w // 8, 8).transpose(2, 3)
    coef = dct @ blocks @ dct.T
    t = table[:, None, None]
    coef = torch.round(coef / t) * t
    out = (dct.T @ coef @ dct).transpose(2, 3).reshape(n, h, w)
    return out + 128


def jpeg(rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Baseline JPEG round trip of [N, 3, H, W] sRGB in [0, 1] at per-image `quality` (1-100).

    Full-range YCbCr, 4:2:0 chroma, the standard tables, 8-bit levels: the artefacts of an
    ordinary encoder (blocking, ringing, chroma bleed), computed on the batch's device.
    """
    n, _, h, w = rgb.shape
    ph, pw = -h % 16, -w % 16
    x = F.pad(rgb, (0, pw, 0, ph), mode="replicate") * 255 if ph or pw else rgb * 255
    constants = _constants(rgb.device)
    ycc = torch.einsum("ij,njhw->nihw", constants.to_ycc, x)
    ycc[:, 1:] += 128
    luma_table, chroma_table = _quant_tables(quality, constants)
    dct = constants.dct
    y = _block_codec(ycc[:, 0], luma_table, dct)
    chroma = F.avg_pool2d(ycc[:, 1:], 2)
    cb, cr = (_block_codec(chroma[:, i], chroma_table, dct) for i in (0, 1))
    chroma = F.interpolate(torch.stack([cb, cr], 1), scale_factor=2, mode="bilinear", align_corners=False)
    ycc = torch.cat([y[:, None], chroma - 128], 1)
    out = torch.einsum("ij,njhw->nihw", constants.to_rgb, ycc)
    return (torch.round(out.clamp(0, 255)) / 255)[..., :h, :w]
