"""Synthetic motion blur: identity at zero motion, blur that grows with the path, continuous
sequences, linear-light averaging, a real JPEG, reproducibility, margins that suffice."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch
from media import texture

from streamdeblur.core.errors import UsageError
from streamdeblur.core.metrics import psnr, sharpness
from streamdeblur.train import synth
from streamdeblur.train.jpeg import jpeg

SIZE = (64, 80)


def source(h: int, w: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    images = [texture(w, h, seed=seed + i) for i in range(batch)]
    return torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in images]).float() / 255


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def test_zero_length_path_reproduces_the_sharp_image() -> None:
    g = torch.Generator().manual_seed(0)
    margin = synth.PRESETS["default"].margin(3, SIZE)
    src = source(SIZE[0] + 2 * margin, SIZE[1] + 2 * margin, batch=2)
    path = synth.CameraPath.random(2, synth.PRESETS["strong"], g, src.device).scaled(0.0)
    blurry, sharp = synth.synthesize(src, synth.STATIC, 3, SIZE, g, path=path)
    centre = src[:, None, :, margin : margin + SIZE[0], margin : margin + SIZE[1]].expand_as(sharp)
    assert torch.equal(blurry, centre) and torch.equal(sharp, centre)


def test_blur_grows_with_path_length() -> None:
    config = dataclasses.replace(synth.PRESETS["strong"], foreground_prob=0.0, jpeg_prob=0.0, read_noise=(0, 0))
    config = dataclasses.replace(config, shot_noise=(0, 0))
    margin = config.margin(1, SIZE)
    src = source(SIZE[0] + 2 * margin, SIZE[1] + 2 * margin, seed=3, batch=4)
    base = synth.CameraPath.random(4, config, torch.Generator().manual_seed(1), src.device)
    scores, errors = [], []
    for k in (0.0, 0.25, 0.5, 1.0):
        g = torch.Generator().manual_seed(2)  # same exposure for every k
        blurry, sharp = synth.synthesize(src, config, 1, SIZE, g, path=base.scaled(k))
        errors.append(psnr(blurry[:, 0], sharp[:, 0]).mean().item())
        scores.append(np.mean([sharpness(to_uint8(b)) for b in blurry[:, 0]]))
    assert errors[0] == math.inf
    assert errors[1] > errors[2] > errors[3], errors  # the input drifts further from the truth
    assert scores[0] > scores[1] > scores[2] > scores[3], scores  # and has less detail


def dot(h: int, w: int, sigma: float = 2.0) -> torch.Tensor:
    """A grey Gaussian dot at the centre of a black [1, 3, h, w] source."""
    y, x = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    return torch.exp(-(x**2 + y**2) / (2 * sigma**2)).expand(1, 3, h, w)


def centroid(image: torch.Tensor) -> tuple[float, float]:
    """Light-weighted centre (output-centred pixels) of a [3, h, w] sRGB frame, in linear light."""
    light = synth.to_linear(image[0])
    h, w = light.shape
    y, x = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    return (light * x).sum().item() / light.sum().item(), (light * y).sum().item() / light.sum().item()


def test_sequence_follows_one_continuous_path() -> None:
    """A dot traces the path: each sharp frame shows it where the path is at mid-exposure, each
    blurry frame spreads its light evenly along the path over the exposure, and frames
    rendered one at a time are the frames of the whole sequence."""
    config = dataclasses.replace(synth.STATIC, exposure=(0.5, 0.5))
    g = torch.Generator().manual_seed(4)
    path = synth.CameraPath.random(1, synth.PRESETS["default"], g, torch.device("cpu"))
    path = dataclasses.replace(
        path, spin=path.spin * 0, zoom=path.zoom * 0, shake_amp=path.shake_amp * torch.tensor([1.0, 1, 0])
    )
    path = dataclasses.replace(path, pan=torch.tensor([[3.0, -2.0]]))
    frames = 4
    src = dot(120, 120)
    blur = synth.SequenceBlur.random(1, config, frames, (64, 64), g, path=path.centred(torch.tensor([1.75])))
    blurry, sharp = blur.render(src, g, 0, frames)
    for t in range(frames):
        tx, ty, _, _ = blur.path.motion(torch.tensor([[t + 0.25]]))
        x, y = centroid(sharp[0, t])
        assert (x, y) == pytest.approx((-tx.item(), -ty.item()), abs=0.03)  # the view moves, the dot does not
        tx, ty, _, _ = blur.path.motion(t + torch.linspace(0, 0.5, 201)[None])
        x, y = centroid(blurry[0, t])
        assert (x, y) == pytest.approx((-tx.mean().item(), -ty.mean().item()), abs=0.05)
        one_blurry, one_sharp = blur.render(src, g, t, 1)
        assert torch.equal(one_blurry[:, 0], blurry[:, t]) and torch.equal(one_sharp[:, 0], sharp[:, t])


def test_views_rendered_together_are_the_views_rendered_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU renders many sub-frame views per call, the CPU one: the same frames."""
    g = torch.Generator().manual_seed(5)
    config = synth.PRESETS["strong"]
    margin = config.margin(2, SIZE)
    src = synth.to_linear(source(SIZE[0] + 2 * margin, SIZE[1] + 2 * margin, batch=2))
    blur = synth.SequenceBlur.random(2, config, 2, SIZE, g)
    starts = torch.arange(2.0).expand(2, 2)
    args = (src, blur.path, starts, blur.exposure, SIZE, blur.foreground)
    one_by_one = synth.expose(*args)
    monkeypatch.setattr(synth, "views_per_call", lambda linear, size: 7)
    together = synth.expose(*args)
    assert synth.subframes(blur.path, starts[:, :1], blur.exposure, SIZE, blur.foreground) > 7
    for a, b in zip(together, one_by_one, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_averaging_happens_in_linear_light() -> None:
    """Black, white, black: a third of the light, which is 0.61 gamma-encoded (not 0.33)."""
    frames = torch.stack([torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)], 1)
    blurry, middle = synth.average_frames(frames)
    assert torch.all(blurry == round((1 / 3) ** (1 / synth.GAMMA) * 255) / 255)
    assert torch.equal(middle, frames[:, 1])


def test_jpeg_matches_a_real_encoder() -> None:
    image = cv2.GaussianBlur(texture(120, 88, seed=6), (0, 0), 1.2)  # photo-like: detail at many scales
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    for quality in (30, 90):
        ours = jpeg(x, torch.tensor([float(quality)]))
        _, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        ref = torch.from_numpy(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()).permute(2, 0, 1)[None] / 255
        assert ours.shape == x.shape
        assert psnr(ours, ref).item() > 35  # same artefacts as libjpeg's, up to rounding
        assert abs(psnr(ours, x).item() - psnr(ref, x).item()) < 1.0
    assert psnr(jpeg(x, torch.tensor([30.0])), x) < psnr(jpeg(x, torch.tensor([90.0])), x)


def test_same_seed_same_batch_and_presets_differ() -> None:
    size = (32, 40)
    margin = synth.PRESETS["strong"].margin(1, size)
    src = source(size[0] + 2 * margin, size[1] + 2 * margin, batch=2)
    runs = {}
    for name in ("default", "default", "mild", "strong"):
        blurry, sharp = synth.synthesize(src, synth.PRESETS[name], 1, size, torch.Generator().manual_seed(7))
        if name in runs:
            assert torch.equal(blurry, runs[name][0]) and torch.equal(sharp, runs[name][1])
        runs[name] = blurry, sharp
        assert torch.equal(blurry * 255, (blurry * 255).round())  # 8-bit levels
    quality = {name: psnr(b[:, 0], s[:, 0]).mean().item() for name, (b, s) in runs.items()}
    assert quality["mild"] > quality["default"] > quality["strong"], quality


@pytest.mark.parametrize("preset", list(synth.PRESETS))
def test_margin_keeps_every_view_inside_the_source(preset: str) -> None:
    config = synth.PRESETS[preset]
    frames, size = 4, (96, 128)
    margin = config.margin(frames, size)
    g = torch.Generator().manual_seed(8)
    blur = synth.SequenceBlur.random(64, config, frames, size, g)
    t = torch.linspace(0, frames - 1 + config.exposure[1], 50).expand(64, -1)
    h, w = size
    corners = torch.tensor([[-w / 2, -h / 2, 1.0], [w / 2, -h / 2, 1], [-w / 2, h / 2, 1], [w / 2, h / 2, 1]])
    points = torch.einsum("bnij,cj->bnci", blur.path.poses(t), corners)
    assert points[..., 0].abs().max() <= w / 2 + margin and points[..., 1].abs().max() <= h / 2 + margin


def test_foreground_moves_on_its_own() -> None:
    config = dataclasses.replace(synth.STATIC, foreground_prob=1.0, foreground_speed=(6.0, 6.0))
    g = torch.Generator().manual_seed(9)
    src = source(100, 100, batch=2)
    blurry, sharp = synth.synthesize(src, config, 3, (80, 80), g)
    static = src[:, :, 10:90, 10:90]
    for t in range(3):
        changed = (sharp[:, t] - static).abs().amax(1) > 0.02  # the object covers part of the frame
        assert 0.01 < changed.float().mean() < 0.6
    assert not torch.equal(sharp[:, 0], sharp[:, 2])  # and it is somewhere else two frames later
    assert not torch.equal(blurry[:, 1], sharp[:, 1])  # its motion blurs it


def test_unknown_preset_is_a_usage_error() -> None:
    assert synth.preset("mild") is synth.PRESETS["mild"]
    with pytest.raises(UsageError, match="unknown blur preset 'nope' \\(use default, mild, strong, noisy\\)"):
        synth.preset("nope")


@pytest.mark.parametrize("sigma", [0.5, 1.5])
def test_gaussian_blur_matches_opencv(sigma: float) -> None:
    images = source(40, 48, batch=2)
    sigmas = [sigma, 1.0]
    ours = synth.gaussian_blur(images, torch.tensor(sigmas))
    radius = math.ceil(3 * max(sigmas))
    for image, blurred, s in zip(images, ours, sigmas, strict=True):
        reference = cv2.GaussianBlur(
            image.permute(1, 2, 0).numpy(), (2 * radius + 1,) * 2, s, borderType=cv2.BORDER_REFLECT_101
        )
        assert np.abs(blurred.permute(1, 2, 0).numpy() - reference).max() < 1e-5


def test_soften_removes_detail_but_keeps_the_picture() -> None:
    sharp = source(64, 64)
    soft = synth.soften(sharp, torch.tensor([1.2]))
    detail = [(x[..., 1:] - x[..., :-1]).abs().mean() for x in (sharp, soft)]
    assert detail[1] < 0.6 * detail[0]
    # light is only moved around: blurred in linear light, the light's total stays as it was
    assert abs(synth.to_linear(soft).mean() - synth.to_linear(sharp).mean()) < 0.003
