"""MRFNet, the Multipath Refinement Fusion Network (models.md §4), and its ablations.

No network definition or weights were ever published (the Caffe prototxts are missing from
the release), so this follows the paper's figures, with every choice of ours written down
in docs/mrfnet.md:

- a light encoder: 4x space-to-depth and a 3x3 conv to 1/4, then stride-2 3x3 convs to
  1/8, 1/16 and 1/32, each followed by one RCU (the paper's backbone is unnamed);
- a Light-Weight-RefineNet decoder: on each path RCU x2 → FUSION (1x1 conv of the coarser
  path's output, upsampled, summed) → CRP (5x5 max-pool → 1x1 conv, twice, summed into
  the input) → RCU x3;
- the MRF unit at the 1/4 path's output: Conv-f-1 → Conv-f-2, a three-conv branch added
  back onto Conv-f-2 (the remote residual) → ReLU, concatenated with Conv-f-1's output
  and the multipath input (the 1/4 path fused with the 1/8 path), then a x4 "deconv"
  (3x3 conv + depth-to-space) to the image's correction;
- a global residual: output = input + correction, the last conv initialised at zero, so
  an untrained model is the identity and sharp frames pass unchanged;
- every path also predicts the image at its scale (a 1x1 conv plus the blurry image at
  that scale) for the scale refinement loss; inference does not compute them.

Ablations (the paper's names, `create_model("mrfnet")` is the full model): `refinenet`
(RCU = two 3x3 convs, a plain head), `lwrefinenet` (light RCUs, plain head), `rcrefinenet`
(light RCUs, head with the remote residual but a single input path), `mrfnet` (all).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.models import msdeblur
from streamdeblur.models.registry import DeblurModel, ModelSpec, PixelLoss, register_model

SCALES = (4, 8, 16, 32)  # the paths: 1/4 .. 1/32 of the frame
LEVEL_WEIGHTS = (1.0, 0.5, 0.25, 0.125, 0.0625)  # the output, then the paths 1/4 .. 1/32


@dataclass(frozen=True)
class Variant:
    light_rcu: bool = True  # 1x1 → 3x3 → 1x1 (LW-RefineNet) instead of two 3x3 convs
    remote_residual: bool = True  # the MRF unit's Conv-f-3..5 branch onto Conv-f-2
    multipath: bool = True  # the MRF unit also takes the 1/8 path (fused) as input


VARIANTS = {
    "refinenet": Variant(light_rcu=False, remote_residual=False, multipath=False),
    "lwrefinenet": Variant(remote_residual=False, multipath=False),
    "rcrefinenet": Variant(multipath=False),
    "mrfnet": Variant(),
}
WIDTHS = (48, 64, 96, 128)  # channels of the paths 1/4 .. 1/32
HEAD = 48  # channels of the MRF unit
# Negative slope of the MRF unit's activations. With ReLUs there, Conv-f-1 died within 300
# steps (0.2 % of its outputs positive): the last conv starts at zero, so at first the head
# only adds noise, Adam shrinks the features feeding it, and a dead ReLU never comes back.
HEAD_SLOPE = 0.2


class RCU(nn.Module):
    """Residual conv unit: x + (ReLU → 1x1 → ReLU → 3x3 → ReLU → 1x1) x, the light form;
    x + (ReLU → 3x3 → ReLU → 3x3) x, RefineNet's."""

    def __init__(self, c: int, light: bool):
        super().__init__()
        if light:
            mid = c // 2
            convs = [nn.Conv2d(c, mid, 1), nn.Conv2d(mid, mid, 3, padding=1), nn.Conv2d(mid, c, 1)]
        else:
            convs = [nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)]
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv in self.convs:
            y = conv(F.relu(y))
        return x + y


class CRP(nn.Module):
    """Chained residual pooling: x + p1 + p2, p1 = 1x1(maxpool5(x)), p2 = 1x1(maxpool5(p1))."""

    def __init__(self, c: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 1, bias=False) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, p = x, x
        for conv in self.convs:
            p = conv(F.max_pool2d(p, 5, stride=1, padding=2))
            out = out + p
        return out


class Path(nn.Module):
    """One refinement path: RCU x2 → FUSION with the coarser path → CRP → RCU x3."""

    def __init__(self, c: int, coarser: int | None, light: bool):
        super().__init__()
        self.pre = nn.Sequential(RCU(c, light), RCU(c, light))
        self.fuse = nn.Conv2d(coarser, c, 1) if coarser else None
        self.crp = CRP(c)
        self.post = nn.Sequential(RCU(c, light), RCU(c, light), RCU(c, light))

    def forward(self, x: torch.Tensor, coarser: torch.Tensor | None) -> torch.Tensor:
        x = self.pre(x)
        if self.fuse is not None and coarser is not None:
            x = x + F.interpolate(self.fuse(coarser), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.post(self.crp(x))


class MRFUnit(nn.Module):
    """The head: Conv-f-1 → Conv-f-2 (+ Conv-f-3..5, the remote residual) → ReLU, joined
    with Conv-f-1 (and the multipath input), then x4 depth-to-space to a correction."""

    def __init__(self, c: int, c_next: int, variant: Variant):
        super().__init__()
        self.multipath = nn.Conv2d(c_next, c, 1) if variant.multipath else None
        self.f1 = nn.Conv2d(c, HEAD, 3, padding=1)
        self.f2 = nn.Conv2d(HEAD, HEAD, 3, padding=1)
        self.branch = (
            nn.Sequential(
                *(m for _ in range(3) for m in (nn.Conv2d(HEAD, HEAD, 3, padding=1), nn.LeakyReLU(HEAD_SLOPE)))
            )[:-1]
            if variant.remote_residual
            else None
        )
        self.out = nn.Conv2d(2 * HEAD, 3 * SCALES[0] ** 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        x = b1
        if self.multipath is not None:
            x = x + F.interpolate(self.multipath(b2), size=b1.shape[-2:], mode="bilinear", align_corners=False)
        f1 = F.leaky_relu(self.f1(x), HEAD_SLOPE)
        f2 = self.f2(f1)
        if self.branch is not None:
            f2 = f2 + self.branch(F.leaky_relu(f2, HEAD_SLOPE))
        joined = torch.cat([F.leaky_relu(f2, HEAD_SLOPE), f1], 1)
        return F.pixel_shuffle(self.out(joined), SCALES[0])


class MRFNet(DeblurModel):
    """Encoder to 1/4 .. 1/32, refinement paths coarse to fine, the MRF head; any frame size."""

    def __init__(self, variant: Variant = VARIANTS["mrfnet"]):
        super().__init__()
        light = variant.light_rcu
        self.stem = nn.Conv2d(3 * SCALES[0] ** 2, WIDTHS[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(WIDTHS, WIDTHS[1:], strict=False)
        )
        self.encode = nn.ModuleList(RCU(c, light) for c in WIDTHS)
        coarser = (*WIDTHS[1:], None)
        self.paths = nn.ModuleList(Path(c, nxt, light) for c, nxt in zip(WIDTHS, coarser, strict=True))
        self.head = MRFUnit(WIDTHS[0], WIDTHS[1], variant)
        self.aux = nn.ModuleList(nn.Conv2d(c, 3, 1) for c in WIDTHS)  # the scale refinement outputs
        self.multiple = SCALES[-1]

    def _paths(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The padded input and each path's refined features, finest first."""
        h, w = x.shape[-2:]
        padded = F.pad(x, (0, -w % self.multiple, 0, -h % self.multiple), mode="replicate")
        features = [self.encode[0](self.stem(F.pixel_unshuffle(padded, SCALES[0])))]
        for down, rcu in zip(self.down, self.encode[1:], strict=True):
            features.append(rcu(down(features[-1])))
        refined: list[torch.Tensor] = [None] * len(features)  # type: ignore[list-item]
        coarser = None
        for k in reversed(range(len(features))):
            coarser = refined[k] = self.paths[k](features[k], coarser)
        return padded, refined

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        padded, refined = self._paths(x)
        out = padded + self.head(refined[0], refined[1])
        return out[..., : x.shape[-2], : x.shape[-1]]

    def forward_levels(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[output, path 1/4, 1/8, 1/16, 1/32]: each path's image estimate at its scale."""
        padded, refined = self._paths(x)
        levels = [(padded + self.head(refined[0], refined[1]))[..., : x.shape[-2], : x.shape[-1]]]
        for scale, feature, aux in zip(SCALES, refined, self.aux, strict=True):
            levels.append(F.avg_pool2d(padded, scale) + aux(feature))
        return levels

    def output_from_levels(self, levels: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return levels[0]

    def for_inference(self) -> nn.Module:
        inference = copy.deepcopy(self).eval()
        inference.aux = nn.ModuleList()  # the scale outputs only serve the training loss
        return inference


def scale_refinement_loss(
    levels: list[torch.Tensor], sharp: torch.Tensor, pixel: PixelLoss
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The paper's loss: a weighted L2 of each path's output against the sharp image at its
    scale (average-pooled), plus the run's pixel loss on the full-size output (unclamped,
    so that outputs outside [0, 1] are pulled back)."""
    total = LEVEL_WEIGHTS[0] * pixel(levels[0], sharp)
    parts = {"out": total.detach()}
    h, w = sharp.shape[-2:]
    padded = F.pad(sharp, (0, -w % SCALES[-1], 0, -h % SCALES[-1]), mode="replicate")
    for scale, level, weight in zip(SCALES, levels[1:], LEVEL_WEIGHTS[1:], strict=True):
        term = F.mse_loss(level, F.avg_pool2d(padded, scale))
        parts[f"x1/{scale}"] = term.detach()
        total = total + weight * term
    return total, parts


# msdeblur's CPU recipe (docs/mrfnet.md), with the paper's scale refinement loss added.
RECIPE = dataclasses.replace(msdeblur.RECIPE, level_loss=scale_refinement_loss)

# (name, variant, MACs per pixel at 1280x720 as torch's FLOP counter counts them, rank for auto)
ABLATIONS = (
    ("mrfnet", "mrfnet", 17_220, 15),
    ("mrfnet-refinenet", "refinenet", 36_718, 0),
    ("mrfnet-lwrefinenet", "lwrefinenet", 13_197, 0),
    ("mrfnet-rcrefinenet", "rcrefinenet", 17_171, 0),
)

SPECS = [
    register_model(
        ModelSpec(
            name=name,
            builder=lambda variant=variant: MRFNet(VARIANTS[variant]),
            summary=f"MRFNet ({variant}): RefineNet-style paths at 1/4..1/32 with a multipath fusion head"
            + ("" if name == "mrfnet" else "; an ablation of the paper"),
            input_multiple=1,
            recurrent=False,
            macs_per_pixel=macs,
            paper="MRFNet: Multipath Refinement Fusion Network for deblurring (models.md §4)",
            peak_elements_per_pixel=60,
            recipe=RECIPE,
            auto_rank=rank,
        )
    )
    for name, variant, macs, rank in ABLATIONS
]
