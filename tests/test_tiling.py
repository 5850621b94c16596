"""Tiles for frames that do not fit: full coverage, no seams, chosen only when needed."""

from __future__ import annotations

import numpy as np
import torch

from streamdeblur.engine.tiling import OVERLAP, frame_bytes, tile_for, tile_starts, tiled
from streamdeblur.models import create_model


def test_tiles_cover_the_frame_with_overlap() -> None:
    for length, tile in [(100, 100), (1000, 256), (257, 128), (2160, 512)]:
        starts = tile_starts(length, tile, OVERLAP)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
        assert all(b - a <= tile - OVERLAP for a, b in zip(starts, starts[1:], strict=False))


def test_pointwise_model_is_reproduced_exactly_by_tiles() -> None:
    x = torch.rand(1, 3, 300, 410)
    prev = torch.rand(1, 3, 300, 410)

    def run(a: torch.Tensor, p: torch.Tensor | None) -> torch.Tensor:
        return torch.sigmoid(3 * a - p)  # per-pixel: any correct blend gives the same image

    assert torch.allclose(tiled(run, x, prev, (128, 160)), run(x, prev), atol=1e-6)


def test_conv_model_tiles_blend_without_seams() -> None:
    torch.manual_seed(0)
    model = create_model("rt-focuser").for_inference()
    x = torch.rand(1, 3, 112, 144)
    with torch.inference_mode():
        whole = model(x)
        pieces = tiled(lambda a, p: model(a), x, None, (80, 96))
    error = (whole - pieces).abs()
    assert 10 * torch.log10(1 / error.pow(2).mean()) > 35  # PSNR vs the untiled frame
    # no seam: the error where the tiles overlap is not much larger than elsewhere
    assert error[..., 32:80].mean() < 3 * error.mean() + 1e-3


def test_tiles_only_when_the_frame_does_not_fit() -> None:
    from streamdeblur.models import get_spec

    spec = get_spec("rt-focuser")  # 320 elements per padded pixel
    whole = frame_bytes(spec, (720, 1280), torch.float32)
    assert whole == 320 * 720 * 1280 * 4 and tile_for(spec, (720, 1280), torch.float32, whole) is None
    tile = tile_for(spec, (2160, 3840), torch.float16, budget=512 * 512 * 320 * 2)
    assert tile is not None and tile[0] % 16 == 0 and frame_bytes(spec, tile, torch.float16) <= 512 * 512 * 320 * 2


def test_model_runner_tiles_large_frames(monkeypatch) -> None:
    from streamdeblur.engine import tiling
    from streamdeblur.engine.runner import ModelRunner
    from streamdeblur.models import get_spec

    budget = 128 * 144 * 320 * 4  # bytes for a 128x144 frame at 320 fp32 elements per pixel
    monkeypatch.setattr(tiling, "free_memory", lambda device: budget / tiling.MEMORY_SHARE)
    runner = ModelRunner(create_model("rt-focuser").for_inference(), get_spec("rt-focuser"), torch.device("cpu"))
    image = (np.random.default_rng(0).random((144, 176, 3)) * 255).astype(np.uint8)
    out = runner(image)
    assert out.shape == image.shape and runner.tile_for((144, 176)) == (128, 128)
    assert runner.tile_for((128, 128)) is None
