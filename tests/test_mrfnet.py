"""MRFNet and its ablations: any frame size, identity at init, the scale refinement loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from streamdeblur.models import create_model, get_spec
from streamdeblur.models.mrfnet import LEVEL_WEIGHTS, SCALES, VARIANTS, scale_refinement_loss
from streamdeblur.train.losses import PIXEL_LOSSES

NAMES = ["mrfnet", *(f"mrfnet-{v}" for v in VARIANTS if v != "mrfnet")]


@pytest.mark.parametrize("name", NAMES)
def test_any_size_and_identity_at_init(name: str) -> None:
    model = create_model(name).eval()
    for size in [(37, 53), (8, 8), (70, 33)]:
        x = torch.rand(1, 3, *size)
        with torch.no_grad():
            assert torch.equal(model(x), x)
            assert torch.equal(model.for_inference()(x), x)


def test_budget_and_ablations_differ() -> None:
    assert get_spec("mrfnet").macs_per_pixel <= 40_000
    params = {name: sum(p.numel() for p in create_model(name).parameters()) for name in NAMES}
    assert len(set(params.values())) == len(NAMES)  # each ablation is a different network


def test_scale_refinement_loss_compares_each_path_at_its_scale() -> None:
    torch.manual_seed(0)
    model = create_model("mrfnet")
    nn.init.normal_(model.head.out.weight, 0, 0.01)
    x, sharp = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    levels = model.forward_levels(x)
    assert [tuple(level.shape[-2:]) for level in levels] == [(64, 96)] + [(64 // s, 96 // s) for s in SCALES]
    assert torch.allclose(levels[0], model(x))
    total, parts = scale_refinement_loss(levels, sharp, PIXEL_LOSSES["mse"])
    assert set(parts) == {"out", *(f"x1/{s}" for s in SCALES)}
    expected = LEVEL_WEIGHTS[0] * parts["out"] + sum(
        w * parts[f"x1/{s}"] for s, w in zip(SCALES, LEVEL_WEIGHTS[1:], strict=True)
    )
    assert torch.allclose(total, expected)
    total.backward()  # every path's scale output gets a gradient
    assert all(aux.weight.grad is not None and aux.weight.grad.abs().sum() > 0 for aux in model.aux)


def test_the_head_recovers_from_features_pushed_below_zero() -> None:
    """Conv-f-1 driven negative on every pixel (as Adam drove it in the first run) still
    passes a gradient: with ReLUs the head went dead and only learnt a constant."""
    model = create_model("mrfnet")
    head = model.head
    nn.init.normal_(head.out.weight, std=1e-3)  # a trained head: its last conv is not zero any more
    nn.init.constant_(head.f1.bias, -100.0)  # every Conv-f-1 output below zero
    x = torch.rand(1, 3, 64, 64)
    model(x).square().mean().backward()
    assert head.f1.weight.grad.abs().sum() > 0 and head.f2.weight.grad.abs().sum() > 0
