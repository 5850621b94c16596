"""Denoisers before the model: TV against scikit-image, each one on a noisy flat patch, and
16-bit frames treated like 8-bit ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamdeblur.pipeline.denoise import DENOISERS, tv_chambolle

CPU = torch.device("cpu")


def test_tv_matches_scikit_image() -> None:
    skimage = pytest.importorskip("skimage.restoration")
    rng = np.random.default_rng(0)
    image = np.clip(rng.random((40, 56, 3)) * 0.3 + np.linspace(0, 0.6, 56)[None, :, None], 0, 1)
    for weight in (0.05, 0.2):
        expected = skimage.denoise_tv_chambolle(image, weight=weight, channel_axis=-1)
        ours = tv_chambolle(torch.from_numpy(image).permute(2, 0, 1), weight).permute(1, 2, 0).numpy()
        assert np.abs(ours - expected).max() < 1e-6


@pytest.mark.parametrize("name", sorted(DENOISERS))
def test_removes_noise_from_a_flat_patch(name: str) -> None:
    rng = np.random.default_rng(1)
    clean = np.full((48, 64, 3), (90, 140, 200), dtype=np.float64)
    noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).round().astype(np.uint8)
    out = DENOISERS[name](noisy, 1.0, CPU)
    assert out.dtype == np.uint8 and out.shape == noisy.shape
    before, after = np.abs(noisy - clean).mean(), np.abs(out - clean).mean()
    assert after < 0.6 * before, (before, after)
    assert np.abs(out.mean((0, 1)) - clean[0, 0]).max() < 1.5  # no colour shift
    stronger = DENOISERS[name](noisy, 2.0, CPU)
    assert np.abs(stronger - clean).mean() <= after + 0.05


@pytest.mark.parametrize("name", sorted(DENOISERS))
def test_sixteen_bit_frames_match_eight_bit_ones(name: str) -> None:
    rng = np.random.default_rng(2)
    eight = np.clip(120 + rng.normal(0, 8, (32, 40, 3)), 0, 255).round().astype(np.uint8)
    sixteen = eight.astype(np.uint16) * 257
    out8, out16 = DENOISERS[name](eight, 1.0, CPU), DENOISERS[name](sixteen, 1.0, CPU)
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - out8).max() < 1.5
