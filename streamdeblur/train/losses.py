"""Training losses: the papers' own, and two common alternatives.

- `mse`: RT-Focuser's loss (models.md §2.5), and UHDVD's per level;
- `l1-ssim`: 0.84 (1 - SSIM) + 0.16 L1 (Zhao et al., "Loss functions for image restoration
  with neural networks"): sharper edges than MSE at the same PSNR;
- `freq`: L1 + 0.1 L1 of the 2-D spectrum (RT-Focuser v2's form): penalises the missing high
  frequencies that blur is made of;
- `psnr`: minus the mean PSNR of the frames (HINet's and NAFNet's PSNR loss), the figure
  `eval` reports. Each frame's weight is 1/MSE, so a nearly sharp frame, whose error is
  tiny, counts as much per dB as a blurry one: L1 and MSE let a model trade a fraction of a
  level on sharp frames, which costs several dB there, for a small gain on blurry ones.
A model's per-level loss (UHDVD's, MRFNet's) is part of its recipe (`Recipe.level_loss`).

They expect float32 tensors and autocast off: `recipes.batch_loss` calls them that way, so
none of them runs in bf16 (SSIM's local variances are differences of near-equal numbers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamdeblur.core import metrics
from streamdeblur.models.registry import PixelLoss

SSIM_WEIGHT = 0.84
FFT_WEIGHT = 0.1
PSNR_EPS = 1e-8  # MSE floor of the PSNR loss (80 dB), so an exact frame has a finite loss


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, target)


def l1_ssim(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return SSIM_WEIGHT * (1 - metrics.ssim(out, target).mean()) + (1 - SSIM_WEIGHT) * F.l1_loss(out, target)


def freq(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    spectrum = lambda x: torch.view_as_real(torch.fft.fft2(x, norm="backward"))  # noqa: E731
    return F.l1_loss(out, target) + FFT_WEIGHT * F.l1_loss(spectrum(out), spectrum(target))


def psnr(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -metrics.psnr(out, target, mse_floor=PSNR_EPS).mean()


PIXEL_LOSSES: dict[str, PixelLoss] = {"mse": mse, "l1-ssim": l1_ssim, "freq": freq, "psnr": psnr}
