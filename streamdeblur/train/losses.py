"""Training losses: the papers' own, and two common alternatives.

- `mse`: RT-Focuser's loss (models.md §2.5), and UHDVD's per level;
- `l1-ssim`: 0.84 (1 - SSIM) + 0.16 L1 (Zhao et al., "Loss functions for image restoration
  with neural networks"): sharper edges than MSE at the same PSNR;
- `freq`: L1 + 0.1 L1 of the 2-D spectrum (RT-Focuser v2's form): penalises the missing high
  frequencies that blur is made of.
UHDVD's multi-level loss (models.md §1.6) is `levels_loss`.

They expect float32 tensors and autocast off: `recipes.batch_loss` calls them that way, so
none of them runs in bf16 (SSIM's local variances are differences of near-equal numbers).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from streamdeblur.metrics import ssim

PixelLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SSIM_WEIGHT = 0.84
FFT_WEIGHT = 0.1
LEVEL_WEIGHTS = (0.7, 0.15, 0.1, 0.05)  # UHDVD: lv1 (full) .. lv4 (1/8)
TV_WEIGHT = 3.5e-8  # UHDVD: on the unnormalised TV sum of the lv1 output


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, target)


def l1_ssim(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return SSIM_WEIGHT * (1 - ssim(out, target).mean()) + (1 - SSIM_WEIGHT) * F.l1_loss(out, target)


def freq(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    spectrum = lambda x: torch.view_as_real(torch.fft.fft2(x, norm="backward"))  # noqa: E731
    return F.l1_loss(out, target) + FFT_WEIGHT * F.l1_loss(spectrum(out), spectrum(target))


PIXEL_LOSSES: dict[str, PixelLoss] = {"mse": mse, "l1-ssim": l1_ssim, "freq": freq}


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Sum of absolute neighbour differences per image (unnormalised, as UHDVD), batch mean."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return (dh + dw).mean()


def levels_loss(
    levels: list[torch.Tensor], targets: list[torch.Tensor], pixel: PixelLoss
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """UHDVD: each level's output, downscaled x0.5, against the sharp frame at its scale.

    `levels` are [Y, r2, r3, r4] from `UHDVD.forward_levels` (each at twice its level's
    scale, in the -0.5 domain); `targets` the sharp pyramid at full, 1/2, 1/4, 1/8 in [0, 1].
    Returns the weighted sum plus TV, and each term (detached) for the log.
    """
    total = TV_WEIGHT * total_variation(levels[0])
    parts = {"tv": total.detach()}
    for k, (level, target, weight) in enumerate(zip(levels, targets, LEVEL_WEIGHTS, strict=True)):
        out = F.interpolate(level, scale_factor=0.5, mode="bilinear", align_corners=False) + 0.5
        term = pixel(out, target)
        parts[f"lv{k + 1}"] = term.detach()
        total = total + weight * term
    return total, parts
