"""Image quality: PSNR, SSIM, and the luma and Laplacian-variance blur score the gate uses.

PSNR and SSIM are written in torch so that `eval` (on the model's device, in float64) and the
training losses (float32, differentiable) share one definition. SSIM is Wang et al. (2004):
an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances,
computed per RGB channel and averaged over the region where the window fits; this is
scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`, which the tests check it against. Sharpness is the blur
gate's own score, so eval figures and `--selective` thresholds are on one scale.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from streamdeblur.core.frame import to_rgb8

ANALYSIS_WIDTH = 480  # blur scores are measured at this width, so thresholds do not depend on resolution
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: an 11x11 window, as scikit-image and the paper
SSIM_K1, SSIM_K2 = 0.01, 0.03


def luma(image: np.ndarray) -> np.ndarray:
    """8-bit luma at the analysis width (area-downscaled first, so 16-bit frames shrink before
    they are reduced to 8 bits; never upscaled)."""
    small = image
    h, w = small.shape[:2]
    if w > ANALYSIS_WIDTH:
        small = cv2.resize(small, (ANALYSIS_WIDTH, max(1, round(h * ANALYSIS_WIDTH / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(to_rgb8(small), cv2.COLOR_RGB2GRAY)


def blur_score(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for sharp detail, low for blur (the classic measure)."""
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, mse_floor: float = 0.0) -> torch.Tensor:
    """Per-image PSNR in dB of [B, C, H, W] tensors (inf where they are identical, unless
    `mse_floor` is added to each image's MSE, as the PSNR training loss does)."""
    mse = (x - y).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / (mse + mse_floor))


@functools.lru_cache(maxsize=8)
def _gaussian_taps(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def _window_mean(x: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local means where the whole window fits (separable 'valid' filter)."""
    taps = _gaussian_taps(x.dtype, x.device)
    c = x.shape[1]
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM of [B, C, H, W] tensors, averaged over channels and valid positions."""
    size = 2 * SSIM_RADIUS + 1
    if min(x.shape[-2:]) < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels, got {x.shape[-1]}x{x.shape[-2]}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mx, my = _window_mean(x), _window_mean(y)
    vx = _window_mean(x * x) - mx * mx
    vy = _window_mean(y * y) - my * my
    cxy = _window_mean(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def sharpness(image: np.ndarray) -> float:
    """Laplacian variance of an H x W x 3 RGB image's luma at the gate's analysis width."""
    return blur_score(luma(image))


def finite(value: float, cap: float = 100.0) -> float:
    """PSNR of identical images is infinite; reports cap it so they stay valid JSON."""
    return cap if math.isinf(value) else value
