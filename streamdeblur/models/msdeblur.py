"""The USC real-time study's multi-scale family, `msdeblur-s/m/l`, built to train on a CPU.

The paper describes three DeepDeblur-style CNNs (1.7 M / 5 M / 14 M parameters) that
deblur coarse to fine at 1/4, 1/2 and full resolution with residual blocks. No network
definition was published, so this is our reading of it, shaped by one constraint the
paper did not have: the weights are trained on 2 CPU cores. Each scale

- sees the blurry image at its scale and the (bilinearly upsampled) estimate of the
  coarser scale (the coarsest sees the blurry image twice);
- moves both to a low-resolution map by space-to-depth (pixel unshuffle by `r`), so its
  residual blocks run at 1/r² of the pixels and see r times further for the same cost;
- returns blurry + correction (a global residual): the correction comes from a last
  convolution initialised at zero, so an untrained model is the identity and a sharp
  frame has the shortest path through the network.

Whether a frame needs deblurring at all is a property of the whole frame, which no
convolution sees: a `FrameGate` reads the full-size scale's features pooled over the frame
(the log of their spread: a blur of a pixel or two only shows at full size) and scales the
final correction by a factor in (0, 1), so a sharp frame can pass through unchanged (a
convolutional correction alone left ~1 to 2 levels of RMS noise on sharp photos and lost
up to 5 dB on them, docs/training.md).

Residual blocks are conv3x3 → ReLU → conv3x3, scaled by a per-channel `beta` (initialised at
`BETA_INIT`, small, so that deep stacks start calm; NAFNet's zero made the blocks learn too
slowly for a CPU-length run: after 2,500 steps the betas were still about 0.02) and added.
`for_inference()` folds `beta` into the second convolution and writes ReLUs in place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.core.errors import WeightsError
from streamdeblur.models.formats import StateDict
from streamdeblur.models.layers import fuse_for_inference, pad_to_multiple
from streamdeblur.models.registry import DeblurModel, ModelSpec, Recipe, register_model

SCALES = 3  # 1/4, 1/2, 1
BETA_INIT = 0.2
GATE_HIDDEN = 16
GATE_OPEN = 2.0  # the gate's initial logit: every frame starts with sigmoid(2) = 0.88 of the correction
# The logit is GATE_GAIN x the last layer's output, so that Adam moves it GATE_GAIN times
# faster than a plain layer (at the recipe's rate a plain gate stayed at 0.88 for every frame
# after 2,000 steps: docs/training.md, run 8).
GATE_GAIN = 10.0


@dataclass(frozen=True)
class Width:
    """One model size: channels, residual blocks at each scale (coarsest first), and the
    unshuffle factor. A block at 1/4 size costs 1/16 of one at full size, but the trained S
    relied on its full-size blocks (removing any one of its seven 1/4-size blocks changed the
    held-out gain by under 0.01 dB; removing a full-size one cost 0.2 to 0.6 dB), so S
    spends its budget there (docs/training.md, run 36)."""

    channels: int
    blocks: tuple[int, int, int]
    unshuffle: int = 4

    @property
    def multiple(self) -> int:
        """Frame sides are padded to this: the coarsest scale must still unshuffle evenly."""
        return self.unshuffle * 2 ** (SCALES - 1)


class ResBlock(nn.Module):
    """x + beta · conv(relu(conv(x))), beta per channel."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.beta = nn.Parameter(torch.full((1, c, 1, 1), BETA_INIT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.conv2(F.relu(self.conv1(x)))

    def fused(self) -> nn.Module:
        return _FusedResBlock(self)


class _FusedResBlock(nn.Module):
    """`ResBlock` for inference: beta folded into conv2's weights, the ReLU in place."""

    def __init__(self, block: ResBlock):
        super().__init__()
        beta = block.beta.detach().view(-1)
        self.conv1 = block.conv1
        self.conv2 = copy.deepcopy(block.conv2)
        with torch.no_grad():
            self.conv2.weight.mul_(beta.view(-1, 1, 1, 1))
            self.conv2.bias.mul_(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu_(self.conv1(x))).add_(x)


class FrameGate(nn.Module):
    """The share of the correction a frame gets, from the log of each feature channel's
    standard deviation over the whole frame (features are small, ~0.02, and vary by tens of
    percent between sharp and blurry frames: the log makes that an O(1) signal). Training
    teaches it on crops; the shipped S's was then fitted on whole frames, offline
    (`benchmarks/gate_fit.py`: better on nearly sharp frames, docs/training.md)."""

    def __init__(self, c: int):
        super().__init__()
        self.fc1 = nn.Linear(c, GATE_HIDDEN)
        self.fc2 = nn.Linear(GATE_HIDDEN, 1)
        nn.init.zeros_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, GATE_OPEN / GATE_GAIN)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] features → [B, 1, 1, 1] factors in (0, 1)."""
        return self.share(features.float().std(dim=(2, 3), correction=0)).view(-1, 1, 1, 1).to(features.dtype)

    def share(self, std: torch.Tensor) -> torch.Tensor:
        """[..., C] float standard deviations of the features → [..., 1] shares of the
        correction in (0, 1)."""
        spread = std.add(1e-4).log().to(self.fc1.weight.dtype)
        return torch.sigmoid(GATE_GAIN * self.fc2(F.relu(self.fc1(spread))))


class Scale(nn.Module):
    """One level: (blurry, coarser estimate) → (blurry + correction, the features it came
    from), all at this level's size."""

    def __init__(self, width: Width, blocks: int):
        super().__init__()
        r, c = width.unshuffle, width.channels
        self.r = r
        self.head = nn.Conv2d(2 * 3 * r * r, c, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(c) for _ in range(blocks)))
        self.tail = nn.Conv2d(c, 3 * r * r, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, blurry: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pixel_unshuffle(torch.cat([blurry, estimate], 1), self.r)
        features = self.body(self.head(x))
        return blurry + F.pixel_shuffle(self.tail(features), self.r), features


class MultiScaleDeblur(DeblurModel):
    """Coarse-to-fine deblurring at 1/4, 1/2 and full size; any frame size (padded inside)."""

    branched = ("conv1", "conv2")  # the residual blocks' (docs/training.md, run 58)

    def __init__(self, width: Width):
        super().__init__()
        self.multiple = width.multiple
        self.scales = nn.ModuleList(Scale(width, blocks) for blocks in width.blocks)  # coarsest first
        self.gate = FrameGate(width.channels)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_levels(x)[-1]

    def forward_levels(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every level's output, coarsest first; the last is the (gated) result at the input's size."""
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.multiple)
        pyramid = [padded]
        for _ in range(SCALES - 1):
            pyramid.insert(0, F.avg_pool2d(pyramid[0], 2))
        outputs, estimate = [], pyramid[0]
        for scale, blurry in zip(self.scales, pyramid, strict=True):
            if estimate.shape[-2:] != blurry.shape[-2:]:
                estimate = F.interpolate(estimate, size=blurry.shape[-2:], mode="bilinear", align_corners=False)
            estimate, features = scale(blurry, estimate)
            outputs.append(estimate)
        gate = self.gate(features)  # from the full-size scale
        outputs[-1] = (padded + gate * (outputs[-1] - padded))[..., :h, :w]
        return outputs

    def for_inference(self) -> nn.Module:
        return fuse_for_inference(copy.deepcopy(self).eval())


def grow(model: nn.Module, small: StateDict) -> StateDict:
    """A smaller msdeblur's weights embedded in `model`'s (wider, as deep or deeper), so that
    the grown model computes exactly what the smaller one did (Net2Net's idea).

    Every tensor of the smaller model fills the leading corner of its counterpart. What is
    new keeps `model`'s random initialisation, except where it would reach the old channels:
    the weights that read new channels into old ones, and whatever the new blocks (appended
    after the old ones) write into old channels, are zero. So the new channels compute from
    the start, their weights into the old channels get gradients at once, and the training
    starts from the smaller model's figures instead of from the identity.
    """
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    old_width = small["scales.0.head.weight"].shape[0]
    for key, old in small.items():
        new = state.get(key)
        if (
            new is None
            or not _fits(old.shape, new.shape)
            or (key.endswith("head.weight") and old.shape[1] != new.shape[1])
        ):
            raise WeightsError(f"{key} {tuple(old.shape)} does not fit into this model")
        if key.endswith("weight") and old.dim() >= 2:
            new[: old.shape[0], old.shape[1] :] = 0  # old outputs do not read new channels
        new[tuple(slice(0, n) for n in old.shape)] = old
    for key in state.keys() - small.keys():
        if ".conv2." in key:  # a new block: it writes only into the new channels
            state[key][:old_width] = 0
    return state


def _fits(old: torch.Size, new: torch.Size) -> bool:
    return len(old) == len(new) and all(o <= n for o, n in zip(old, new, strict=True))


def macs_per_pixel(width: Width) -> float:
    """Convolution MACs per full-size output pixel (padding aside: exact at multiples)."""
    r2, c = width.unshuffle**2, width.channels
    per_low_pixel = [9 * (6 * r2 * c + 2 * blocks * c * c + c * 3 * r2) for blocks in width.blocks]
    # the gate adds ~1k MACs a frame
    return sum(pixel / r2 / 4 ** (SCALES - 1 - level) for level, pixel in enumerate(per_low_pixel))


# Sized for CPU training (docs/training.md): Adam 5e-4 with cosine decay, the gradient norm
# capped at 1 and the loss on the unclamped output (at 1e-3 two runs diverged to outputs
# outside [0, 1], where a clamped loss passes no gradient back), 8 crops of 192 px, and 40 %
# of the samples nearly sharp. The loss is PSNR, not the paper's L1 + SSIM: it weighs each
# frame by 1/MSE, as the held-out mean PSNR does, which taught the frame gate to leave nearly
# sharp frames alone (run 11: held-out `mild` -0.62 → +0.13 dB); with it, no `still` samples (their
# error can reach zero, and they would outweigh everything else).
RECIPE = Recipe(
    lr=5e-4,
    batch=8,
    crop=192,
    loss="psnr",
    blur="default:0.6,mild:0.4",
    clip_grad=1.0,
    clamp_output=False,
    # From random weights the frame gate shuts within 1,000 steps, before the correction is
    # worth anything, and a shut gate passes no gradient to either (docs/training.md, runs 16
    # and 60); so it stays at its initial 0.88 while the correction learns.
    hold=("gate.", 5000),
)

SIZES = {  # (width, rank for --model auto, the paper's figures)
    # each no deeper at any scale than the next size up, so that it grows into it (`grow`)
    "s": (Width(channels=48, blocks=(1, 2, 5)), 10, "1.7M in the paper; 100+ fps on A100/3080/T4/L4"),
    "m": (Width(channels=72, blocks=(7, 6, 6)), 20, "5M in the paper; 35+ fps"),
    "l": (Width(channels=128, blocks=(7, 7, 7)), 30, "14M in the paper; 20+ fps"),
}

SPECS = {
    size: register_model(
        ModelSpec(
            name=f"msdeblur-{size}",
            builder=lambda width=width: MultiScaleDeblur(width),
            summary=f"multi-scale residual CNN, {width.channels} ch x {'/'.join(map(str, width.blocks))} blocks "
            f"at 1/4, 1/2, 1 on 1/{width.unshuffle} space-to-depth maps; {note}",
            input_multiple=1,
            recurrent=False,
            macs_per_pixel=round(macs_per_pixel(width)),
            paper="USC real-time deblurring study: S/M/L multi-scale CNNs",
            peak_elements_per_pixel=40,
            shift_period=width.unshuffle,
            recipe=RECIPE,
            auto_rank=rank,
            grows_from=tuple(f"msdeblur-{smaller}" for smaller in SIZES if SIZES[smaller][1] < rank),
            grow=grow,
        )
    )
    for size, (width, rank, note) in SIZES.items()
}
