"""Distillation: a trained model's output as part of the training target (`train --teacher`).

A small model trained on (blurry, sharp) pairs alone must learn from targets that hold
detail no network recovers from that blur; a stronger model's output is a target it can
reach, and it carries what the stronger model learned. Each step's target is
`(1 - mix) * sharp + mix * teacher(blurry)`: one target, so the loss and everything else
about the step stay as they are. The teacher runs frozen, without gradients, on the same
device (under the same autocast) as the student.

A teacher can also average its output over flipped, transposed and shifted views of each
frame (`--teacher-views`, `engine/ensemble.py`), so a model's own weights, seen through
several views, make a teacher stronger than the model itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

from streamdeblur.core.errors import UsageError
from streamdeblur.engine import weights
from streamdeblur.engine.ensemble import self_ensemble
from streamdeblur.models import get_spec, model_names
from streamdeblur.models.registry import DeblurModel


class Teacher:
    """A frozen model whose output (averaged over `views` views, `engine.ensemble`) makes up
    `mix` of each training target."""

    def __init__(self, model: DeblurModel, mix: float, views: int = 1, period: int = 1) -> None:
        self.model = model
        self.mix = mix
        self.views = views
        self.period = period

    @torch.no_grad()
    def target(self, blurry: torch.Tensor, sharp: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """The target for `blurry` [B, T, 3, h, w] (single-frame teachers see B*T frames)."""
        x = blurry.flatten(0, 1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        taught = self_ensemble(self.model, x, self.views, self.period).clamp(0, 1).reshape(sharp.shape)
        return torch.lerp(sharp, taught, self.mix)


def open_teacher(source: str, mix: float, device: torch.device, channels_last: bool = False, views: int = 1) -> Teacher:
    """The teacher named by `source`: a model's installed weights (its name) or a weights file
    of ours (which names its model)."""
    if source in model_names():
        name, path = source, "default"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise UsageError(f"--teacher {source}: no such model or weights file")
        name = weights.safetensors_owner(path)
        if name is None:
            raise UsageError(f"--teacher {source}: give a model name or a .safetensors of ours (which names its model)")
    spec = get_spec(name)
    if spec.recurrent:
        raise UsageError(f"--teacher {source}: {name} is recurrent; a teacher must deblur frame by frame")
    model = weights.load_model(name, path).for_inference().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.requires_grad_(False)
    return Teacher(model, mix, views, spec.shift_period)
