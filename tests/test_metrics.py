"""PSNR and SSIM against scikit-image's reference implementation; sharpness is the gate's score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from media import motion_blur, texture

from streamdeblur.core.metrics import blur_score, finite, luma, psnr, sharpness, ssim

skimage_metrics = pytest.importorskip("skimage.metrics")


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255


@pytest.mark.parametrize("size", [(48, 64), (37, 53), (11, 11)])
def test_psnr_and_ssim_match_scikit_image(size: tuple[int, int]) -> None:
    h, w = size
    sharp = texture(w, h, seed=1)
    for degraded in (motion_blur(sharp, 5), np.clip(sharp + 20, 0, 255).astype(np.uint8), texture(w, h, seed=2)):
        ours_psnr = psnr(as_tensor(degraded), as_tensor(sharp)).item()
        ours_ssim = ssim(as_tensor(degraded), as_tensor(sharp)).item()
        ref_psnr = skimage_metrics.peak_signal_noise_ratio(sharp, degraded, data_range=255)
        ref_ssim = skimage_metrics.structural_similarity(
            sharp,
            degraded,
            channel_axis=2,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert ours_psnr == pytest.approx(ref_psnr, abs=1e-9)
        assert ours_ssim == pytest.approx(ref_ssim, abs=1e-9)


def test_metrics_are_per_image_and_float32_is_close() -> None:
    a = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    b = (a + 0.05 * torch.randn_like(a)).clamp(0, 1)
    batch = ssim(a, b)
    assert batch.shape == (3,)
    assert torch.allclose(batch, torch.cat([ssim(a[i : i + 1], b[i : i + 1]) for i in range(3)]))
    assert abs(ssim(a.float(), b.float())[0].item() - batch[0].item()) < 1e-5
    assert psnr(a, a)[0].item() == float("inf") and finite(float("inf")) == 100.0


def test_ssim_needs_a_whole_window() -> None:
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))


def test_sharpness_is_the_gate_score_and_falls_with_blur() -> None:
    image = texture(640, 360)
    assert sharpness(image) == blur_score(luma(image))
    assert sharpness(image) > sharpness(motion_blur(image, 5)) > sharpness(motion_blur(image, 15))
