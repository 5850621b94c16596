"""Per-model training recipes (models.md): default hyper-parameters and the loss of one batch.

RT-Focuser (§2.5): Adam 1e-4, cosine to 1e-6, batch 4, crop 256, MSE of the clamped output,
one frame at a time. UHDVD (§1.6): Adam 1e-4, batch 1, crop 512, trained recurrently (the
detached previous output is the next frame's `prev`; the first frame of a sequence uses
itself) with the per-level loss 0.7/0.15/0.1/0.05 plus TV. Deviations, for training on
synthetic data in short runs: sequences of 4 frames instead of whole videos, and a cosine
schedule instead of UHDVD's step decay. Models without a recipe get the generic one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from streamdeblur.models.registry import DeblurModel, ModelSpec
from streamdeblur.models.uhdvd import pil_pyramid
from streamdeblur.train.losses import PixelLoss, levels_loss


@dataclass(frozen=True)
class Recipe:
    lr: float = 1e-4
    lr_min: float = 1e-6
    batch: int = 4
    crop: int = 256
    frames: int = 1
    loss: str = "mse"
    multi_level: bool = False  # UHDVD's per-level loss through `forward_levels`
    channels_last: bool = True  # UHDVD's patch split/stitch needs contiguous NCHW maps


RECIPES = {
    "rt-focuser": Recipe(),
    "uhdvd": Recipe(batch=1, crop=512, frames=4, multi_level=True, channels_last=False),
}


def recipe_for(spec: ModelSpec) -> Recipe:
    return RECIPES.get(spec.name, Recipe(frames=4 if spec.recurrent else 1))


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
            return pixel(outputs[0].float().clamp(0, 1), sharp.flatten(0, 1)), {}
        total, parts = torch.zeros((), device=blurry.device), {}
        for t, out in enumerate(outputs):
            y = sharp[:, t]
            if recipe.multi_level:
                levels = [level.float() for level in out]
                loss, terms = levels_loss(levels, pil_pyramid(y, levels[1].shape[-2:]), pixel)
            else:
                loss, terms = pixel(out.float().clamp(0, 1), y), {}
            total = total + loss / len(outputs)
            for key, value in terms.items():
                parts[key] = parts.get(key, 0) + value / len(outputs)
    return total, parts


def _forward(model: DeblurModel, spec: ModelSpec, recipe: Recipe, blurry: torch.Tensor, channels_last: bool) -> list:
    """The model's outputs for a batch: one tensor [B*T, 3, h, w] for single-frame models;
    per frame, the output (or with `multi_level`, `forward_levels`' list) for recurrent ones."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if not spec.recurrent:
        return [model(blurry.flatten(0, 1).contiguous(memory_format=fmt))]
    outputs, prev = [], None
    for t in range(blurry.shape[1]):
        x = blurry[:, t].contiguous(memory_format=fmt)
        if recipe.multi_level:
            levels = model.forward_levels(x, prev)
            outputs.append(levels)
            out = model.final_output(levels[0], x.shape[-2:])
        else:
            out = model(x, prev)
            outputs.append(out)
        prev = out.detach().float()
    return outputs
