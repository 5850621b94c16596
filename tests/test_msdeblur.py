"""The multi-scale light family (msdeblur-s/m/l): shapes, identity at init, precision, the
inference form, compute budgets, and the shipped weights on held-out photos."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import shared_path
from torch import nn

from streamdeblur.core.errors import WeightsError
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.engine.weights import find_default_weights, load_grown, load_model, save_weights
from streamdeblur.models import create_model, get_spec
from streamdeblur.models.layers import BranchedConv, add_branches, fold_branches
from streamdeblur.models.msdeblur import SIZES, MultiScaleDeblur, ResBlock
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, evaluate

NAMES = [f"msdeblur-{size}" for size in SIZES]
BUDGETS = {"msdeblur-s": 20_000, "msdeblur-m": 60_000, "msdeblur-l": 200_000}  # MACs/pixel at 1280x720


def trained_like(model: MultiScaleDeblur) -> MultiScaleDeblur:
    """Non-zero corrections and block scales, as training leaves them (init makes them zero)."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, ResBlock):
            nn.init.normal_(module.beta, 0.0, 0.3)
    for scale in model.scales:
        nn.init.normal_(scale.tail.weight, 0.0, 0.01)
    return model


@pytest.mark.parametrize("name", NAMES)
def test_untrained_model_is_the_identity_at_any_size(name: str) -> None:
    model = create_model(name).eval()
    for size in [(37, 53), (8, 8), (1, 130)]:
        x = torch.rand(2, 3, *size)
        with torch.no_grad():
            y = model(x)
        assert y.shape == x.shape
        assert torch.equal(y, x)


@pytest.mark.parametrize("name", NAMES)
def test_budget(name: str) -> None:
    assert get_spec(name).macs_per_pixel <= BUDGETS[name]  # the spec's figure is checked in test_models


def test_inference_form_is_the_same_function() -> None:
    model = trained_like(create_model("msdeblur-s")).eval()
    fast = model.for_inference()
    x = torch.rand(1, 3, 45, 70)
    with torch.inference_mode():
        y, y_fast = model(x), fast(x)
    assert (y - x).abs().max() > 1e-3  # the check below would be empty for the identity
    assert (y - y_fast).abs().max().item() < 1e-5
    assert not any(isinstance(m, ResBlock) for m in fast.modules())  # every beta folded


def test_branches_start_as_the_plain_model_and_fold_back_into_it_exactly() -> None:
    """Training branches (train --branches) change nothing until trained; after training
    (BatchNorm scales and running statistics moved), the folded plain network computes what
    the branched one does in eval mode."""
    model = trained_like(create_model("msdeblur-s")).eval()
    branched = copy.deepcopy(model)
    add_branches(branched, branched.branched)
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        assert torch.equal(branched(x), model(x))
        for bn in (m for m in branched.modules() if isinstance(m, nn.BatchNorm2d)):
            nn.init.normal_(bn.weight, 0.0, 0.1)
            nn.init.normal_(bn.bias, 0.0, 0.01)
        branched.train()(torch.rand(2, 3, 45, 70))  # moves the running statistics
        y = branched.eval()(x)
        fold_branches(branched)
        assert (y - model(x)).abs().max() > 1e-3  # the branches now count
        assert (branched(x) - y).abs().max().item() < 1e-5
    assert branched.state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ValueError, match="3x3"):
        BranchedConv(nn.Conv2d(4, 4, 1))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_reduced_precision_and_channels_last_agree_with_fp32(dtype: torch.dtype, tolerance: float) -> None:
    model = trained_like(create_model("msdeblur-s")).eval().for_inference()
    x = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        y = model(x)
        low = model.to(dtype)(x.to(dtype).contiguous(memory_format=torch.channels_last))
    assert low.dtype == dtype and low.shape == y.shape
    assert (low.float() - y).abs().max().item() < tolerance


def test_each_scale_sees_the_coarser_estimate() -> None:
    """Changing the coarsest scale's correction changes the output: the scales are chained."""
    model = trained_like(create_model("msdeblur-s")).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.scales[0].tail.bias.fill_(0.1)
        after = model(x)
    assert not torch.allclose(before, after)
    assert len(model.forward_levels(x)) == 3


@pytest.mark.parametrize("name", NAMES)
def test_weights_deblur_held_out_photos(name: str) -> None:
    """The shipped weights (where installed) raise PSNR on held-out photos blurred by the
    synthetic generator (fixed seeds; centre crops of 10 photos, about a second)."""
    spec = get_spec(name)
    if find_default_weights(spec) is None:
        pytest.skip(f"no weights installed for {name}")
    photos = open_dataset(f"sharp:{shared_path('data', 'train_sharp')}", "test")
    runner = ModelRunner(load_model(name, "default").for_inference(), spec, torch.device("cpu"), "fp32")
    report = evaluate(runner, [photos], EvalOptions(crop=256, max_clips=10))
    assert report["psnr"]["gain"] > 0.2 and report["ssim"]["gain"] > 0


def test_the_frame_gate_scales_each_frames_correction_on_its_own() -> None:
    model = trained_like(create_model("msdeblur-s")).eval()
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        model.gate.fc2.bias.fill_(-10.0)  # closed: any frame passes unchanged
        assert (model(x) - x).abs().max() < 1e-6
        model.gate.fc2.bias.fill_(10.0)  # open: the whole correction
        corrected = model(x)
        assert (corrected - x).abs().max() > 1e-3
        nn.init.normal_(model.gate.fc2.weight, 0.0, 0.05)
        model.gate.fc2.bias.zero_()
        both = model(x)
        alone = torch.cat([model(x[:1]), model(x[1:])])
    assert (both - alone).abs().max() < 1e-5  # a frame's gate does not depend on the others in the batch
    share = ((both - x) * (corrected - x)).flatten(1).sum(1) / (corrected - x).pow(2).flatten(1).sum(1)
    assert 0 < share.min() and share.max() < 1 and (share[0] - share[1]).abs() > 1e-4


@pytest.mark.parametrize("small, large", [("msdeblur-s", "msdeblur-m"), ("msdeblur-m", "msdeblur-l")])
def test_a_grown_model_starts_as_the_smaller_one_and_learns_with_its_new_channels(
    small: str, large: str, tmp_path: Path
) -> None:
    path = save_weights(trained_like(create_model(small)).state_dict(), tmp_path / "w.safetensors", get_spec(small))
    before, grown = load_model(small, path).eval(), load_grown(large, path)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert (grown(x) - before(x)).abs().max() < 1e-5
    grown(x).sub(torch.rand_like(x)).pow(2).mean().backward()
    width = before.scales[0].tail.weight.shape[1]
    new_inputs = grown.scales[-1].tail.weight.grad[:, width:]
    assert new_inputs.abs().max() > 0  # the new channels reach the output after the first step
    new_block = grown.scales[-1].body[-1].conv2.weight.grad
    assert new_block[:width].abs().max() > 0


def test_only_a_smaller_sibling_is_grown(tmp_path: Path) -> None:
    path = save_weights(create_model("msdeblur-m").state_dict(), tmp_path / "m.safetensors", get_spec("msdeblur-m"))
    with pytest.raises(WeightsError, match="are for msdeblur-m, not msdeblur-s"):
        load_grown("msdeblur-s", path)
