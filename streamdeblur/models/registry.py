"""Models registered by name with a small spec, created with `create_model(name, weights=...)`.

Each architecture module registers itself at import time; nothing else in the code base
branches on model names. The spec carries what the rest of the tool needs to know without
building the network: size rules, recurrence, default weights, accepted official formats
and compute cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from streamdeblur.errors import UsageError


@dataclass(frozen=True)
class ModelSpec:
    """What the tool knows about a model before building it.

    `macs_per_pixel` counts multiply-accumulates of convolutions per *output* pixel at
    `macs_size` (W, H); it is checked against torch's FLOP counter in the tests.
    `peak_elements_per_pixel` sizes inference memory (see `pipeline.tiling.frame_bytes`).
    `official_formats` names the checkpoint layouts `weights.load_state_dict` accepts
    besides our own .safetensors (e.g. "uhdvd-release-dir", "rt-focuser-pth").
    """

    name: str
    builder: Callable[[], nn.Module]
    summary: str
    input_multiple: int
    recurrent: bool
    macs_per_pixel: float
    macs_size: tuple[int, int] = (1280, 720)
    official_formats: tuple[str, ...] = ()
    paper: str = ""
    default_weights: str = field(default="")
    peak_elements_per_pixel: float = 0.0  # live activation elements per padded input pixel, at peak

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

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

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


def create_model(name: str, weights: str | Path | None = None) -> DeblurModel:
    """Build model `name`; `weights` is None (random init), "default" or a path.

    A path may be our .safetensors or an official checkpoint the spec accepts; the format is
    detected and loading is strict, so a checkpoint for another model is a clear error.
    """
    from streamdeblur import weights as weights_mod

    spec = get_spec(name)
    model = spec.builder()
    if weights is not None:
        path = weights_mod.resolve_weights(spec, weights)
        state = weights_mod.load_state_dict(path, spec)
        weights_mod.load_strict(model, state, spec, path)
    return model
