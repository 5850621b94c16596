"""The loss of one training batch, by the model's recipe (`ModelSpec.recipe`).

Single-frame models see a batch of B*T frames; recurrent ones run each sequence in order;
a recipe with a `level_loss` (UHDVD, MRFNet) takes it on every level of `forward_levels`.
"""

from __future__ import annotations

import torch

from streamdeblur.models.registry import DeblurModel, ModelSpec, Recipe
from streamdeblur.train.losses import PixelLoss


def batch_loss(
    model: DeblurModel,
    spec: ModelSpec,
    recipe: Recipe,
    blurry: torch.Tensor,
    sharp: torch.Tensor,
    pixel: PixelLoss,
    channels_last: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of a batch of sequences [B, T, 3, h, w] and its terms (detached), for the log.

    Recurrent models run the frames in order, each getting the previous (detached) output;
    single-frame models see the T frames as a batch of B*T. The model runs under whatever
    autocast the caller set (bf16 on CUDA); the losses are computed afterwards with autocast
    off, on float32 copies of the outputs, so none of them (SSIM's local variances, TV's
    sums of millions of terms) is ever evaluated in reduced precision.
    """
    outputs = _forward(model, spec, recipe, blurry, channels_last)
    with torch.autocast(blurry.device.type, enabled=False):
        if not spec.recurrent:
            if recipe.level_loss:
                return recipe.level_loss([level.float() for level in outputs[0]], sharp.flatten(0, 1), pixel)
            return pixel(_clamped(outputs[0].float(), recipe), sharp.flatten(0, 1)), {}
        total, parts = torch.zeros((), device=blurry.device), {}
        for t, out in enumerate(outputs):
            y = sharp[:, t]
            if recipe.level_loss:
                loss, terms = recipe.level_loss([level.float() for level in out], y, pixel)
            else:
                loss, terms = pixel(_clamped(out.float(), recipe), y), {}
            total = total + loss / len(outputs)
            for key, value in terms.items():
                parts[key] = parts.get(key, 0) + value / len(outputs)
    return total, parts


def _clamped(out: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """The output as the loss sees it: clamped to [0, 1] where the recipe says so (the
    product clamps what it writes; but a clamped pixel passes no gradient, so a model
    whose outputs all left the range could never come back)."""
    return out.clamp(0, 1) if recipe.clamp_output else out


def _forward(model: DeblurModel, spec: ModelSpec, recipe: Recipe, blurry: torch.Tensor, channels_last: bool) -> list:
    """The model's outputs for a batch: one tensor [B*T, 3, h, w] for single-frame models;
    per frame, the output for recurrent ones; with a `level_loss`, `forward_levels`' lists."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if not spec.recurrent:
        x = blurry.flatten(0, 1).contiguous(memory_format=fmt)
        return [model.forward_levels(x) if recipe.level_loss else model(x)]
    outputs, prev = [], None
    for t in range(blurry.shape[1]):
        x = blurry[:, t].contiguous(memory_format=fmt)
        if recipe.level_loss:
            levels = model.forward_levels(x, prev)
            outputs.append(levels)
            out = model.output_from_levels(levels, x.shape[-2:])
        else:
            out = model(x, prev)
            outputs.append(out)
        prev = out.detach().float()
    return outputs
