"""Models: parity with the official implementations, the forward contract, specs.

Parity tests use ../shared (official UHDVD checkpoints and frames, an RT-Focuser state_dict
with its reference output) and skip without it; everything else runs on random weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path
from safetensors.torch import load_file
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from streamdeblur.engine.weights import load_model
from streamdeblur.models import create_model, get_spec, model_names
from streamdeblur.models.rt_focuser import RTFocuser
from streamdeblur.models.uhdvd import GRIDS, UHDVD, pil_resize, regrid, split, stitch

# The contract asks for >= 45 dB; both ports are exact up to float rounding (about 135 dB for
# UHDVD, 157 dB for RT-Focuser on CPU), so anything far below that is a regression.
PARITY_DB = 100.0
FP16_HEADROOM = 16  # activations must stay this far below fp16's max (65504)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def read_rgb(path: Path) -> torch.Tensor:
    """A PNG as [1, 3, H, W] RGB in [0, 1]."""
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def randomize_batchnorms(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics, so that folding them is really tested."""
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="module")
def uhdvd_official() -> UHDVD:
    return load_model("uhdvd", shared_path("fixtures", "uhdvd_official", "checkpoints", "4KRD")).eval()


@pytest.fixture(scope="module")
def rt_fixture() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    folder = shared_path("fixtures", "rt_focuser_official")
    return load_file(folder / "state_dict.safetensors"), load_file(folder / "io.safetensors")


# -- UHDVD ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", ["a", "b"])  # b is 370x250: the x128 stretch matters
def test_uhdvd_matches_official_recurrently(uhdvd_official: UHDVD, seq: str) -> None:
    folder = shared_path("fixtures", "uhdvd_official")
    expected = torch.from_numpy(np.load(folder / f"{seq}_expected.npy")) + 0.5
    peak = 0.0

    def track(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal peak
        peak = max(peak, output.abs().max().item())

    convs = [m for m in uhdvd_official.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    hooks = [conv.register_forward_hook(track) for conv in convs]
    scores, prev = [], None
    try:
        with torch.inference_mode():
            for t in range(3):
                prev = uhdvd_official(read_rgb(folder / "frames" / f"{seq}_{t}.png"), prev)
                scores.append(psnr(prev[0], expected[t]))
    finally:
        for hook in hooks:
            hook.remove()
    report = f"{seq}: PSNR per frame " + ", ".join(f"{s:.1f}" for s in scores) + f" dB; max |conv output| {peak:.1f}"
    print(report)
    assert min(scores) >= PARITY_DB, report
    assert peak < 65504 / FP16_HEADROOM, report


def test_split_stitch_regrid_are_inverse_tilings() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    for grid in GRIDS:
        assert torch.equal(stitch(split(x, grid), grid), x)
    quadrants = split(x, (2, 2))
    assert torch.equal(quadrants[2:4], x[:, :, :4, 4:])  # patch order TL, TR, BL, BR; each a block of B
    assert torch.equal(regrid(split(x, (4, 2)), (4, 2), (2, 2)), quadrants)


def test_pil_resize_follows_pil() -> None:
    """8 → 4 px: PIL's antialiased taps (edge windows renormalised) and its half-up rounding.

    (Checked against Pillow itself on many sizes while writing it; Pillow is no dependency.)
    """
    row = torch.tensor([0, 0, 255, 0, 255, 0, 0, 0], dtype=torch.int32).view(1, 1, 1, 8)
    # 255/7 = 36.4 (edge: weights 3/7 3/7 1/7), 127.5 exactly (a tie, rounded up), 95.6, 0
    assert pil_resize(row, (1, 4)).flatten().tolist() == [36, 128, 96, 0]
    assert torch.equal(pil_resize(row, (1, 8)), row)


@pytest.mark.parametrize("size", [(37, 53), (130, 70)])
def test_uhdvd_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = UHDVD().eval()
    x = torch.rand(1, 3, *size)
    with torch.inference_mode():
        y = model(x)
        levels = model.forward_levels(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    h, w = (math.ceil(s / 128) * 128 for s in size)
    assert [tuple(t.shape[-2:]) for t in levels] == [(2 * h, 2 * w), (h, w), (h // 2, w // 2), (h // 4, w // 4)]


def test_uhdvd_recurrence() -> None:
    """prev=None means "P = current frame"; any other prev changes the result."""
    torch.manual_seed(0)
    model = UHDVD().eval()
    x = torch.randint(0, 256, (1, 3, 128, 128)) / 255  # 8-bit values at a x128 size: P = x exactly
    with torch.inference_mode():
        first = model(x)
        assert torch.allclose(model(x, prev=x), first, atol=1e-6)
        assert not torch.allclose(model(x, prev=first), first, atol=1e-3)


# -- RT-Focuser -----------------------------------------------------------------------------


def test_rt_focuser_key_layout_matches_official() -> None:
    listing = shared_path("fixtures", "rt_focuser_official", "keys", "rt_focuser_v1_standard_state_dict.txt")
    expected = [line.split("\t") for line in listing.read_text().splitlines()]
    ours = [[key, str(tuple(value.shape))] for key, value in RTFocuser().state_dict().items()]
    assert len(ours) == 800 and ours == expected


def test_rt_focuser_matches_official(rt_fixture, tmp_path: Path) -> None:
    state, io = rt_fixture
    model = RTFocuser().eval()
    model.load_state_dict(state, strict=True)
    torch.save(state, tmp_path / "GoPro_RT_Focuser_Standard_256.pth")
    from_pth = load_model("rt-focuser", tmp_path / "GoPro_RT_Focuser_Standard_256.pth").for_inference()
    with torch.inference_mode():
        scores = {
            "plain eval": psnr(model(io["input"]), io["output"]),
            "for_inference": psnr(model.for_inference()(io["input"]), io["output"]),
            ".pth via create_model, for_inference": psnr(from_pth(io["input"]), io["output"]),
        }
    report = ", ".join(f"{name} {db:.1f} dB" for name, db in scores.items())
    print(report)
    assert min(scores.values()) >= PARITY_DB, report


@pytest.mark.parametrize("size", [(37, 53), (130, 70), (8, 8)])
def test_rt_focuser_inference_form_is_the_same_function(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = randomize_batchnorms(RTFocuser()).eval()
    fast = model.for_inference()
    x = torch.rand(2, 3, *size)
    with torch.inference_mode():
        y, y_fast = model(x), fast(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert (y - y_fast).abs().max().item() < 1e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())  # all folded or in-place affine
    assert len(model.state_dict()) == 800  # the original is untouched


def test_rt_focuser_ignores_prev() -> None:
    model = RTFocuser().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), model(x, prev=torch.rand_like(x)))


# -- specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", [("uhdvd", 7_257_700), ("rt-focuser", 5_864_531)])
def test_parameter_counts(name: str, params: int) -> None:
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("name", model_names())
def test_spec_macs_match_flop_counter(name: str) -> None:
    spec = get_spec(name)
    width, height = spec.macs_size
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.empty(1, 3, height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    macs_per_pixel = counter.get_total_flops() / 2 / (width * height)
    assert macs_per_pixel == pytest.approx(spec.macs_per_pixel, rel=0.01)


def test_specs() -> None:
    uhdvd, rt = get_spec("uhdvd"), get_spec("rt-focuser")
    formats = lambda spec: tuple(f.name for f in spec.formats)  # noqa: E731
    assert (uhdvd.input_multiple, uhdvd.recurrent, formats(uhdvd)) == (128, True, ("uhdvd-release-dir",))
    assert (rt.input_multiple, rt.recurrent, formats(rt)) == (16, False, ("state_dict-pickle",))
