"""Denoisers that run before the model (`--denoise NAME --denoise-strength S`).

A deblurring model sharpens what it sees, sensor noise included; a denoiser in front of it
trades a little detail for less amplified noise. These are the three the USC real-time
study timed: bilateral filtering, non-local means and total-variation denoising. Each is
one function `(image, strength, device) -> image` on H x W x 3 RGB frames (uint8, or uint16
for 10- to 16-bit video) and one line in `DENOISERS`. `strength` scales the method's own
parameter (1 is the tuned default; 2 smooths twice as hard).
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np
import torch

Denoiser = Callable[[np.ndarray, float, torch.device], np.ndarray]

BILATERAL_SIGMA = 20.0  # colour sigma, 8-bit levels
NLM_H = 5.0  # filter strength, 8-bit levels (OpenCV's h and hColor)
TV_WEIGHT = 0.05  # Chambolle's lambda for images in [0, 1] (scikit-image's default is 0.1)
TV_EPS = 2e-4  # relative change of the energy at which the iteration stops (as scikit-image)
TV_MAX_ITERATIONS = 200


def bilateral(image: np.ndarray, strength: float, device: torch.device) -> np.ndarray:
    """OpenCV's bilateral filter (5 px window, spatial sigma 3)."""
    sigma = BILATERAL_SIGMA * strength
    if image.dtype == np.uint8:
        return cv2.bilateralFilter(image, d=5, sigmaColor=sigma, sigmaSpace=3)
    scaled = image.astype(np.float32) / 65535.0
    out = cv2.bilateralFilter(scaled, d=5, sigmaColor=sigma / 255, sigmaSpace=3)
    return np.clip(out * 65535.0 + 0.5, 0, 65535).astype(np.uint16)


def nlm(image: np.ndarray, strength: float, device: torch.device) -> np.ndarray:
    """OpenCV's `fastNlMeansDenoisingColored` (7 px patches, 21 px search window).

    OpenCV runs it on 8-bit colour images only; a 16-bit frame gets the 8-bit result's
    change added to it, so its finer levels survive where nothing was smoothed.
    """
    h = NLM_H * strength
    if image.dtype == np.uint8:
        return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)
    eight = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    change = cv2.fastNlMeansDenoisingColored(eight, None, h, h, 7, 21).astype(np.float32) - eight
    return np.clip(image + change * 257.0 + 0.5, 0, 65535).astype(np.uint16)


def tv(image: np.ndarray, strength: float, device: torch.device) -> np.ndarray:
    """Total-variation denoising by Chambolle's projection, on `device` (the model's: a GPU
    runs it too). Each channel is denoised on its own, as scikit-image does."""
    peak = 255.0 if image.dtype == np.uint8 else 65535.0
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float() / peak
    out = tv_chambolle(x, TV_WEIGHT * strength)
    out = (out.clamp(0, 1) * peak + 0.5).permute(1, 2, 0).cpu().numpy()
    return out.astype(image.dtype)


def tv_chambolle(
    image: torch.Tensor, weight: float, eps: float = TV_EPS, max_iterations: int = TV_MAX_ITERATIONS
) -> torch.Tensor:
    """Chambolle (2004) TV denoising of each channel of [C, H, W]: minimises
    ||u - image||² / 2 + weight · TV(u) by a fixed-point iteration on the dual field p.

    The iteration, step 1/4 and stopping rule follow scikit-image's `denoise_tv_chambolle`
    (stop when the energy changes by less than eps times the first one); a channel that has
    converged stops changing while the others go on.
    """
    c = image.shape[0]
    p = image.new_zeros((2, *image.shape))  # dual field: (vertical, horizontal)
    g = torch.zeros_like(p)
    out, tau = image, 0.25
    first = previous = None
    active = torch.ones(c, dtype=torch.bool, device=image.device)
    for i in range(max_iterations):
        if i > 0:
            d = -p.sum(0)  # minus the divergence of p
            d[:, 1:, :] += p[0, :, :-1, :]
            d[:, :, 1:] += p[1, :, :, :-1]
            out = torch.where(active.view(-1, 1, 1), image + d, out)
            energy = d.square().flatten(1).sum(1)
        else:
            energy = image.new_zeros(c)
        g.zero_()
        g[0, :, :-1, :] = out[:, 1:, :] - out[:, :-1, :]
        g[1, :, :, :-1] = out[:, :, 1:] - out[:, :, :-1]
        norm = g.square().sum(0).sqrt()
        energy = (energy + weight * norm.flatten(1).sum(1)) / image[0].numel()
        p = (p - tau * g) / (1 + norm * (tau / weight))
        if i == 0:
            first = previous = energy
            continue
        active &= (previous - energy).abs() >= eps * first
        if not bool(active.any()):
            break
        previous = energy
    return out


DENOISERS: dict[str, Denoiser] = {"bilateral": bilateral, "nlm": nlm, "tv": tv}


def denoiser(name: str, strength: float, device: torch.device) -> Callable[[np.ndarray], np.ndarray] | None:
    """`--denoise NAME --denoise-strength S` as a stage for frames of a model on `device` (TV
    runs there too); None for `none`."""
    if name == "none":
        return None
    return functools.partial(DENOISERS[name], strength=strength, device=device)
