"""UHDVD (Deng et al., ICCV 2021; models.md §1): multi-scale, separable-patch, recurrent.

Four levels, each an encoder/decoder pair with its own weights. Coarse levels run on patches
stacked on the batch dimension (lv4: 4x2 grid, lv3: 2x2, lv2: 2x1, lv1: whole image); each
level's decoder runs on the next finer level's grid, so its output adds straight onto that
level's input. Convolutions zero-pad and channel attention pools *per patch*, so the
tiling is part of the function: it is reproduced here with generic split/stitch helpers.

The attribute names `encoder_lv1` ... `decoder_lv4` make the official release files
(`encoder_lv1.pkl`, ...) map onto state_dict prefixes `encoder_lv1.` and so on.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.core.errors import WeightsError
from streamdeblur.models.formats import CheckpointFormat, StateDict, load_pickled_state_dict
from streamdeblur.models.registry import DeblurModel, ModelSpec, PixelLoss, Recipe, register_model

Grid = tuple[int, int]  # (rows, cols) of patches
GRIDS: tuple[Grid, ...] = ((1, 1), (2, 1), (2, 2), (4, 2))  # lv1 .. lv4
MULTIPLE = 128  # an lv4 patch is H/32 x W/16 and must survive two stride-2 convs


def split(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """[B, C, H, W] → [rows·cols·B, C, H/rows, W/cols], patches row-major, each a block of B."""
    rows, cols = grid
    b, c, h, w = x.shape
    x = x.view(b, c, rows, h // rows, cols, w // cols).permute(2, 4, 0, 1, 3, 5)
    return x.reshape(rows * cols * b, c, h // rows, w // cols)


def stitch(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Inverse of `split`: patches back into whole maps."""
    rows, cols = grid
    n, c, h, w = x.shape
    b = n // (rows * cols)
    x = x.view(rows, cols, b, c, h, w).permute(2, 3, 0, 4, 1, 5)
    return x.reshape(b, c, rows * h, cols * w)


def regrid(x: torch.Tensor, src: Grid, dst: Grid) -> torch.Tensor:
    """Re-tile patches from grid `src` to grid `dst` (pure data movement)."""
    return x if src == dst else split(stitch(x, src), dst)


def up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners=False), the official F.interpolate."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


PIL_BITS = 22  # PIL's fixed-point precision for 8-bit resampling


@functools.lru_cache(maxsize=64)
def _pil_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's bilinear taps along one axis: source indices and fixed-point weights, [taps, n_out].

    As PIL's resample: a triangle filter widened by the scale when shrinking (antialias),
    windows truncated at the edges and renormalised, weights rounded to 22 fractional bits.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    center = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale
    first = torch.trunc(center - support + 0.5).clamp(min=0)
    last = torch.trunc(center + support + 0.5).clamp(max=n_in)
    src = first[:, None] + torch.arange(math.ceil(support) * 2 + 1, dtype=torch.float64)
    weight = (1 - ((src - center[:, None] + 0.5) / support).abs()).clamp(min=0) * (src < last[:, None])
    weight = torch.floor(weight / weight.sum(1, keepdim=True) * (1 << PIL_BITS) + 0.5)
    return src.clamp(max=n_in - 1).long().T.to(device), weight.int().T.to(device)


def pil_resize(levels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's bilinear resize of 8-bit images, bit-exact: int32 levels 0..255, [B, C, H, W].

    The official script resizes uint8 PIL images (the x128 stretch and the pyramid), so its
    inputs are rounded to 8 bits after a horizontal and again after a vertical pass; the
    pyramid's dyadic weights make exact .5 ties common, so the rounding decides parity.
    """
    for dim, n_out in ((3, size[1]), (2, size[0])):  # PIL: horizontal pass first
        if levels.shape[dim] != n_out:
            index, weight = _pil_taps(levels.shape[dim], n_out, levels.device)
            shape = [1, 1, 1, 1]
            shape[dim] = n_out
            acc = sum(levels.index_select(dim, i) * w.view(shape) for i, w in zip(index, weight, strict=True))
            levels = ((acc + (1 << (PIL_BITS - 1))) >> PIL_BITS).clamp(0, 255)
    return levels


def pil_pyramid(x: torch.Tensor, size: tuple[int, int]) -> list[torch.Tensor]:
    """[B, 3, H, W] in [0, 1] as the official script sees it: rounded to 8 bits, PIL-resized
    to `size` (h, w), then to 1/2, 1/4 and 1/8 of it; four levels in [0, 1], in `x`'s dtype.

    The model's blurry inputs (`UHDVD.forward_levels`) and the training targets alike.
    """
    h, w = size
    full = pil_resize(torch.round(x.clamp(0, 1) * 255).int(), (h, w))
    levels = [full] + [pil_resize(full, (h >> k, w >> k)) for k in (1, 2, 3)]
    return [lv.to(x.dtype) / 255 for lv in levels]


class ResBlock(nn.Sequential):
    """x + conv3x3 → ReLU → conv3x3 (keys `.0`, `.2` as in the release)."""

    def __init__(self, c: int):
        super().__init__(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


class ChannelAttention(nn.Module):
    """sigmoid(MLP(avgpool x) + MLP(maxpool x)), shared MLP C → C/8 → C without biases."""

    def __init__(self, c: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 8, 1, bias=False)
        self.fc2 = nn.Conv2d(c // 8, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)))
        avg, mx = self.fc2(F.relu(self.fc1(pooled))).chunk(2)
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """sigmoid(conv3x3([channel mean, channel max]))."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv1(torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), 1)))


def _stage(ci: int, co: int, stride: int) -> tuple[nn.Module, ...]:
    """An encoder stage: conv3x3 in, two residual blocks, channel and spatial attention."""
    return nn.Conv2d(ci, co, 3, stride, 1), ResBlock(co), ResBlock(co), ChannelAttention(co), SpatialAttention()


def _run_stage(
    x: torch.Tensor, conv: nn.Module, rb1: nn.Module, rb2: nn.Module, ca: nn.Module, sa: nn.Module
) -> torch.Tensor:
    """conv → RB → RB → CBAM with a residual around the attention."""
    x = rb2(rb1(conv(x)))
    y = ca(x) * x
    return sa(y) * y + x


class Encoder(nn.Module):
    """6 ch at h x w → deep f [128, h/4, w/4], skips s1 [32, h, w] and s2 [64, h/2, w/2]."""

    def __init__(self):
        super().__init__()
        self.layer1, self.layer2, self.layer3, self.ca1, self.sa1 = _stage(6, 32, 1)
        self.layer5, self.layer6, self.layer7, self.ca2, self.sa2 = _stage(32, 64, 2)
        self.layer9, self.layer10, self.layer11, self.ca3, self.sa3 = _stage(64, 128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s1 = _run_stage(x, self.layer1, self.layer2, self.layer3, self.ca1, self.sa1)
        s2 = _run_stage(s1, self.layer5, self.layer6, self.layer7, self.ca2, self.sa2)
        f = _run_stage(s2, self.layer9, self.layer10, self.layer11, self.ca3, self.sa3)
        return f, s1, s2


class Decoder(nn.Module):
    """f at h' x w' → 3 ch at 8h' x 8w'; s1 must already be at twice its encoder's size."""

    def __init__(self):
        super().__init__()
        self.layer13, self.layer14 = ResBlock(128), ResBlock(128)
        self.layer16 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.layer17, self.layer18 = ResBlock(64), ResBlock(64)
        self.layer20 = nn.ConvTranspose2d(64, 32, 4, 4, 0)
        self.layer21, self.layer22 = ResBlock(32), ResBlock(32)
        self.layer24 = nn.Conv2d(32, 3, 3, padding=1)

    def forward(self, f: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        x = self.layer16(self.layer14(self.layer13(f))) + s2
        x = self.layer20(self.layer18(self.layer17(x))) + s1
        return self.layer24(self.layer22(self.layer21(x)))


class UHDVD(DeblurModel):
    """The 4KRD network: eight sub-nets, 7,257,700 parameters."""

    def __init__(self):
        super().__init__()
        self.encoder_lv1, self.encoder_lv2, self.encoder_lv3, self.encoder_lv4 = (Encoder() for _ in GRIDS)
        self.decoder_lv1, self.decoder_lv2, self.decoder_lv3, self.decoder_lv4 = (Decoder() for _ in GRIDS)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """Deblur [B, 3, H, W] in [0, 1]; `prev` is the previous call's output (None: new shot).

        The result is the official output + 0.5, unclamped, so feeding it back as `prev`
        reproduces the official recurrence exactly.
        """
        return self.final_output(self.forward_levels(x, prev)[0], x.shape[-2:])

    def output_from_levels(self, levels: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return self.final_output(levels[0], size)

    @staticmethod
    def final_output(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """`forward`'s result from `forward_levels(x, prev)[0]`: resized to the input's (h, w)
        `size` and moved from the -0.5 domain to [0, 1] (unclamped)."""
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False) + 0.5

    def forward_levels(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every level's output, for the training loss (models.md §1.6), in the -0.5 domain.

        Returns [Y, r2, r3, r4] with H x W the frame stretched to multiples of 128: Y [B,3,2H,2W]
        is the final output before the resize to the input size; r2 [B,3,H,W], r3 [B,3,H/2,W/2]
        and r4 [B,3,H/4,W/4] are the coarser decoders' outputs stitched to whole maps. Each is
        at twice its level's scale; the loss downsamples it bilinearly x0.5 and compares it
        with the sharp frame at 1, 1/2, 1/4, 1/8.
        """
        h, w = (math.ceil(s / MULTIPLE) * MULTIPLE for s in x.shape[-2:])
        blurry = [lv - 0.5 for lv in pil_pyramid(x, (h, w))]
        if prev is None:  # first frame of a shot: the official script's P = current frame
            p1 = blurry[0]
        else:
            p1 = F.interpolate(prev - 0.5, size=(h, w), mode="bilinear", align_corners=False)
        prevs = [p1] + [F.interpolate(p1, scale_factor=0.5**k, mode="bilinear", align_corners=False) for k in (1, 2, 3)]
        inputs = [torch.cat(pair, 1) for pair in zip(prevs, blurry, strict=True)]

        encoders = (self.encoder_lv1, self.encoder_lv2, self.encoder_lv3, self.encoder_lv4)
        decoders = (self.decoder_lv1, self.decoder_lv2, self.decoder_lv3, self.decoder_lv4)
        outputs: list[torch.Tensor] = []
        residual = deep = None
        for k in (3, 2, 1, 0):  # lv4 → lv1
            grid, out_grid = GRIDS[k], GRIDS[max(k - 1, 0)]
            level_in = split(inputs[k], grid)
            if residual is not None:
                level_in = level_in + torch.cat((residual, residual), 1)
            f, s1, s2 = encoders[k](level_in)
            f = regrid(f, grid, out_grid)
            if deep is not None:
                f = f + deep
            residual = decoders[k](f, up2(regrid(s1, grid, out_grid)), regrid(s2, grid, out_grid))
            outputs.append(stitch(residual, out_grid))
            if k:
                deep = up2(regrid(f, out_grid, GRIDS[max(k - 2, 0)]))
        return outputs[::-1]


RELEASE_FILES = tuple(f"{part}_lv{k}.pkl" for part in ("encoder", "decoder") for k in range(1, 5))


def load_release_dir(path: Path) -> StateDict:
    """The official release: eight legacy pickles of plain state_dicts, one per sub-network;
    each file's keys get its stem as prefix (`encoder_lv1.`), as the attribute names here."""
    if not path.is_dir():
        raise WeightsError(f"{path} is one file of the UHDVD release; pass its directory {path.parent}")
    missing = [name for name in RELEASE_FILES if not (path / name).is_file()]
    if len(missing) == len(RELEASE_FILES):
        raise WeightsError(
            f"{path} is a directory but not a UHDVD release (no {{encoder,decoder}}_lv{{1..4}}.pkl in it)"
        )
    if missing:
        raise WeightsError(f"{path} is not a complete UHDVD release directory: missing {', '.join(missing)}")
    state: StateDict = {}
    for name in RELEASE_FILES:
        prefix = name.removesuffix(".pkl") + "."
        state.update({prefix + key: value for key, value in load_pickled_state_dict(path / name).items()})
    return state


RELEASE_DIR = CheckpointFormat(
    name="uhdvd-release-dir",
    help="the UHDVD release directory of eight {encoder,decoder}_lv{1..4}.pkl",
    matches=lambda path: path.is_dir() or path.name in RELEASE_FILES,
    load=load_release_dir,
    files=lambda path: [path / name for name in RELEASE_FILES],
)

# models.md §1.6: Adam 1e-4, batch 1, crop 512, trained recurrently with the per-level loss
# 0.7/0.15/0.1/0.05 (+ TV). Deviations for short runs on synthetic data: sequences of 4
# frames instead of whole videos, a cosine schedule instead of step decay.
LEVEL_WEIGHTS = (0.7, 0.15, 0.1, 0.05)  # lv1 (full) .. lv4 (1/8)
TV_WEIGHT = 3.5e-8  # on the unnormalised TV sum of the lv1 output


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Sum of absolute neighbour differences per image (unnormalised, as UHDVD), batch mean."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1)
    return (dh + dw).mean()


def levels_loss(
    levels: list[torch.Tensor], sharp: torch.Tensor, pixel: PixelLoss
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """§1.6: each level's output, downscaled x0.5, against the sharp frame at its scale.

    `levels` are [Y, r2, r3, r4] from `UHDVD.forward_levels` (each at twice its level's
    scale, in the -0.5 domain); the targets are `sharp` PIL-resized to full, 1/2, 1/4, 1/8.
    Returns the weighted sum plus TV, and each term (detached) for the log.
    """
    targets = pil_pyramid(sharp, levels[1].shape[-2:])
    total = TV_WEIGHT * total_variation(levels[0])
    parts = {"tv": total.detach()}
    for k, (level, target, weight) in enumerate(zip(levels, targets, LEVEL_WEIGHTS, strict=True)):
        out = F.interpolate(level, scale_factor=0.5, mode="bilinear", align_corners=False) + 0.5
        term = pixel(out, target)
        parts[f"lv{k + 1}"] = term.detach()
        total = total + weight * term
    return total, parts


RECIPE = Recipe(batch=1, crop=512, frames=4, level_loss=levels_loss, channels_last=False)

SPEC = register_model(
    ModelSpec(
        name="uhdvd",
        builder=UHDVD,
        summary="UHDVD 4KRD: multi-scale separable-patch recurrent network for 4K video, 7.3M params",
        input_multiple=MULTIPLE,
        peak_elements_per_pixel=900,  # CPU process peak (an upper bound); 32-ch decoder maps at 2x size dominate
        recurrent=True,
        macs_per_pixel=513_660,
        formats=(RELEASE_DIR,),
        recipe=RECIPE,
        auto_rank=50,  # the best model, on a GPU that can run it
        min_compute=(7, 0),  # tensor cores (fp16) from Volta on; older GPUs are too slow for it
        paper="Deng et al., Multi-Scale Separable Network for Ultra-High-Definition Video Deblurring, ICCV 2021",
    )
)
