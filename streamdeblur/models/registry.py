"""Models registered by name with a spec, built with `create_model(name)`.

Each architecture module registers itself at import time; nothing outside `models/` names
or branches on a model. The spec carries everything the rest of the tool needs to know
without building the network: size rules, recurrence, compute cost, default weights, the
official checkpoint formats it loads, its training recipe and its rank for `--model auto`.
Weights are loaded by `streamdeblur.engine.weights.load_model`: this registry knows nothing of
files, so it imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from streamdeblur.core.errors import UsageError
from streamdeblur.models.formats import CheckpointFormat, StateDict

PixelLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LevelLoss = Callable[[list[torch.Tensor], torch.Tensor, PixelLoss], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: `streamdeblur train` fills the options left unset from it.

    `blur` is a preset or a mix (`default:0.6,mild:0.3,still:0.1`, see `train.synth.blur_mix`).
    `level_loss(levels, sharp, pixel)` is a loss on every level of the model's
    `forward_levels` (with `pixel`, the run's pixel loss), returning the total and its
    terms for the log; None: one `pixel` loss on the clamped output. `channels_last` is for
    CUDA training (UHDVD's patch tiling needs NCHW maps).
    `clip_grad` caps a step's gradient norm: one odd batch cannot throw the weights off.
    `hold` (prefix, steps): in a run from random weights, the parameters whose names start
    with prefix keep their initial values for the first steps (a part that would otherwise
    learn to switch off an untrained one before that one is worth anything).
    """

    lr: float = 1e-4
    lr_min: float = 1e-6
    batch: int = 4
    crop: int = 256
    frames: int = 1
    loss: str = "mse"
    blur: str = "default"
    level_loss: LevelLoss | None = None
    channels_last: bool = True
    clip_grad: float | None = None  # max global gradient norm per step (None: no clipping)
    clamp_output: bool = True  # the pixel loss sees the output clamped to [0, 1]
    hold: tuple[str, int] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """What the tool knows about a model before building it.

    `macs_per_pixel` counts multiply-accumulates of convolutions per *output* pixel at
    `macs_size` (W, H); it is checked against torch's FLOP counter in the tests.
    `peak_elements_per_pixel` sizes inference memory (see `pipeline.tiling.frame_bytes`).
    `shift_period` is the stride of a model's finest space-to-depth: its output depends on
    where the frame falls on that grid, so `--views` shifts frames by fractions of it
    (`engine.ensemble`); 1 for a model whose answer moves with the frame.
    `formats` are the checkpoint layouts `weights.load_state_dict` accepts besides our own
    .safetensors. `auto_rank` orders the models `--model auto` may pick (higher is better;
    0: never picked); `min_compute` is the CUDA capability below which a GPU is too slow.
    `grow(model, state)`, where set, embeds the weights of a smaller model named in
    `grows_from` into a freshly built `model`'s state_dict, computing the same function, so
    that `train --init` can start a larger model where a smaller one has got to.
    """

    name: str
    builder: Callable[[], nn.Module]
    summary: str
    input_multiple: int
    recurrent: bool
    macs_per_pixel: float
    macs_size: tuple[int, int] = (1280, 720)
    formats: tuple[CheckpointFormat, ...] = ()
    recipe: Recipe = field(default_factory=Recipe)
    auto_rank: int = 0
    min_compute: tuple[int, int] | None = None
    paper: str = ""
    default_weights: str = field(default="")
    peak_elements_per_pixel: float = 0.0  # live activation elements per padded input pixel, at peak
    shift_period: int = 1
    grows_from: tuple[str, ...] = ()
    grow: Callable[[nn.Module, StateDict], StateDict] | None = None

    @property
    def weights_file(self) -> str:
        """File name of the default weights under `weights/`."""
        return self.default_weights or f"{self.name}.safetensors"


class DeblurModel(nn.Module):
    """The contract every registered model keeps.

    `forward(x, prev=None)` takes RGB in [0, 1], shape [B, 3, H, W] with *any* H and W (a
    model pads or resizes internally to its own size rules and returns the input's size),
    and returns the deblurred image in the same domain, unclamped. Recurrent models take the
    previous *unclamped* output as `prev` (None on the first frame of a shot); others ignore it.
    """

    # attribute names of the convolutions that `train --branches` trains beside
    # reparameterisation branches (models.layers.BranchedConv); none: the option is refused
    branched: tuple[str, ...] = ()

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward_levels(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every level's output, for a recipe's `level_loss` (models that have levels)."""
        raise NotImplementedError(f"{type(self).__name__} has no levels")

    def output_from_levels(self, levels: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """`forward`'s result from `forward_levels`' list, for an input of `size` (h, w)."""
        raise NotImplementedError(f"{type(self).__name__} has no levels")

    def for_inference(self) -> nn.Module:
        """An eval-mode module computing the same function faster (e.g. BatchNorm folded).

        The returned module keeps the forward contract above; training code never uses it.
        """
        return self.eval()


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry; names are unique."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[ModelSpec]:
    """All registered specs, in registration order."""
    return list(_REGISTRY.values())


def model_names() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec for `name`, or a usage error naming the models that exist."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise UsageError(f"unknown model {name!r} (available: {known})") from None


def create_model(name: str) -> DeblurModel:
    """Build model `name` with its initial (untrained) weights."""
    return get_spec(name).builder()
