"""RT-Focuser v1, Standard configuration (models.md §2): a light U-Net for real-time deblurring.

Module names follow the official RT_Focuser_Standard one for one (including `Up_conv5`,
`Msf_8`, `denoiser.kernel`), so an official .pth state_dict loads with strict=True.
`for_inference()` returns the same function restructured for speed: BatchNorms folded into
convolutions (or applied in place), the identity and sharpness branches merged into one
depthwise kernel, MLIA branches run before nearest upsampling, elementwise ops in place,
channels_last memory. The product runs that form; the plain module is the reference and the
training form.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.models.formats import PICKLED_STATE_DICT
from streamdeblur.models.layers import (
    bn_affine,
    fold_bn_before,
    fuse_for_inference,
    pad_to_multiple,
)
from streamdeblur.models.registry import DeblurModel, ModelSpec, Recipe, register_model


def conv_bn_relu(ci: int, co: int, k: int = 3, bias: bool = True) -> list[nn.Module]:
    """conv → BN → ReLU, the official conv_block body (also MLIA branches and fusion)."""
    return [nn.Conv2d(ci, co, k, padding=k // 2, bias=bias), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]


def conv_gelu_bn(ci: int, co: int, k: int, groups: int = 1) -> list[nn.Module]:
    """conv → GELU → BN: LD and X-Fuse put the activation *before* the norm."""
    return [nn.Conv2d(ci, co, k, padding=k // 2, groups=groups), nn.GELU(), nn.BatchNorm2d(co)]


def mlp(ci: int, hidden: int, co: int) -> list[nn.Module]:
    """1x1 expand → 1x1 squeeze, each conv → GELU → BN."""
    return conv_gelu_bn(ci, hidden, 1) + conv_gelu_bn(hidden, co, 1)


def rescale(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Nearest resize by 2**steps.

    The official code takes successive x2 / x0.5 nearest steps; one step of 2**steps picks
    exactly the same pixels (every 2**-steps-th from the top left, or replication).
    """
    return x if steps == 0 else F.interpolate(x, scale_factor=2.0**steps, mode="nearest")


class ConvBlock(nn.Module):
    """conv_block(Ci→Co): conv3x3 → BN → ReLU."""

    def __init__(self, ci: int, co: int):
        super().__init__()
        self.conv = nn.Sequential(*conv_bn_relu(ci, co))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UpConv(nn.Module):
    """up_conv(Ci→Co): bilinear x2 → conv3x3 → BN → ReLU."""

    def __init__(self, ci: int, co: int):
        super().__init__()
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up = nn.Sequential(upsample, *conv_bn_relu(ci, co))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class Sharpness(nn.Module):
    """SN branch: a learnable depthwise 3x3 kernel (initialised to the Laplacian) → BN."""

    def __init__(self, c: int):
        super().__init__()
        laplacian = torch.full((3, 3), -1.0 / 9)
        laplacian[1, 1] = 8.0 / 9
        self.kernel = nn.Parameter(laplacian.expand(c, 1, 3, 3).clone())
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.conv2d(x, self.kernel, padding=1, groups=self.kernel.shape[0]))


class BranchSum(nn.Module):
    """a(x) + b(x), summed into a's output: the inference form of an LD unit's mixer.

    `a` must return a fresh tensor (here a conv → GELU → BN chain), since it is overwritten.
    """

    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x).add_(self.b(x))


class LDMixer(nn.Module):
    """The spatial half of an LD unit: DWconv k x k → GELU → BN, plus x, plus SN(x)."""

    def __init__(self, c: int, k: int):
        super().__init__()
        self.fn = nn.Sequential(*conv_gelu_bn(c, c, k, groups=c))
        self.denoiser = Sharpness(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x + self.denoiser(x)

    @torch.no_grad()
    def fused(self) -> nn.Module:
        """fn(x) + one depthwise 3x3 conv: x + BN(K * x) = (s·K + δ) * x + t, exact."""
        scale, shift = bn_affine(self.denoiser.bn)
        kernel = self.denoiser.kernel * scale.view(-1, 1, 1, 1)
        kernel[:, 0, 1, 1] += 1.0
        c = kernel.shape[0]
        merged = nn.Conv2d(c, c, 3, padding=1, groups=c).to(kernel.device, kernel.dtype)
        merged.weight.data.copy_(kernel)
        merged.bias.data.copy_(shift)
        return BranchSum(self.fn, merged)


class LDBlock(nn.Module):
    """`depth` LD units at Ci (mixer, then a x4 MLP with no skip), then conv_block(Ci→Co)."""

    def __init__(self, ci: int, co: int, depth: int, k: int):
        super().__init__()
        self.block = nn.Sequential(*(nn.Sequential(LDMixer(ci, k), *mlp(ci, 4 * ci, ci)) for _ in range(depth)))
        self.up = ConvBlock(ci, co)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.block(x))


class MLIA(nn.Module):
    """Multi-level fusion of the four encoder maps at one scale, with squeeze-excitation.

    Each branch is a pointwise conv → BN → ReLU, which commutes with nearest resampling; the
    inference form (`fused`) therefore runs a branch at the coarser of its two resolutions.
    """

    def __init__(self, cins: tuple[int, ...], co: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*conv_bn_relu(ci, co, 1, bias=False)) for ci in cins)
        self.fusion_conv = nn.Sequential(*conv_bn_relu(len(cins) * co, co, 3, bias=False))
        self.channel_attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(co, co // 4, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(co // 4, co, 1, bias=False),
            nn.Sigmoid(),
        )
        self.branch_before_upsampling = False

    def forward(self, feats: list[torch.Tensor], level: int) -> torch.Tensor:
        """`feats[i]` is at 1/2**i of the input; the result is at 1/2**level."""
        maps = []
        for i, (branch, feat) in enumerate(zip(self.branches, feats, strict=True)):
            steps = i - level
            if self.branch_before_upsampling and steps > 0:
                maps.append(rescale(branch(feat), steps))
            else:
                maps.append(branch(rescale(feat, steps)))
        fused = self.fusion_conv(torch.cat(maps, 1))
        return fused * self.channel_attention(fused)

    def fused(self) -> MLIA:
        self.branch_before_upsampling = True
        return self


class XFuse(nn.Module):
    """X-Fuse(Ci→Co): grouped 3x3 + MLP, concatenate the image at this scale, 3x3 + MLP."""

    def __init__(self, ci: int, co: int):
        super().__init__()
        self.conv = nn.Sequential(*conv_gelu_bn(ci, ci, 3, groups=2), *mlp(ci, 4 * co, co))
        self.conv2 = nn.Sequential(*conv_gelu_bn(co + 3, co, 3), *mlp(co, 4 * co, co))

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.cat((self.conv(x), image), 1))


class RTFocuser(DeblurModel):
    """RT_Focuser_Standard: dims 16/32/128/160/256, depths 3/4/4/3/2, kernels 3/3/7/7/7."""

    def __init__(
        self,
        dims: tuple[int, ...] = (16, 32, 128, 160, 256),
        depths: tuple[int, ...] = (3, 4, 4, 3, 2),
        kernels: tuple[int, ...] = (3, 3, 7, 7, 7),
    ):
        super().__init__()
        self.stem = ConvBlock(3, dims[0])
        ins = (dims[0], *dims[:-1])
        self.encoder1, self.encoder2, self.encoder3, self.encoder4, self.encoder5 = (
            LDBlock(ci, co, depth, k) for ci, co, depth, k in zip(ins, dims, depths, kernels, strict=True)
        )
        self.Up5, self.Up_conv5 = UpConv(dims[4], dims[3]), XFuse(2 * dims[3], dims[3])
        self.Up4, self.Up_conv4 = UpConv(dims[3], dims[2]), XFuse(2 * dims[2], dims[2])
        self.Up3, self.Up_conv3 = UpConv(dims[2], dims[1]), XFuse(2 * dims[1], dims[1])
        self.Up2, self.Up_conv2 = UpConv(dims[1], dims[0]), XFuse(2 * dims[0], dims[0])
        self.Conv_1x1 = nn.Conv2d(dims[0], 3, 1)
        self.Msf_8, self.Msf_4, self.Msf_2, self.Msf_1 = (MLIA(dims[:4], co) for co in dims[3::-1])
        self.channels_last = False

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """Deblur [B, 3, H, W] in [0, 1]; reflect-pads to a multiple of 16 and crops back."""
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, 16)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats = [self.encoder1(self.stem(x))]
        for encoder in (self.encoder2, self.encoder3, self.encoder4, self.encoder5):
            feats.append(encoder(F.max_pool2d(feats[-1], 2)))
        d = feats.pop()
        decoder = (
            (3, self.Msf_8, self.Up5, self.Up_conv5),
            (2, self.Msf_4, self.Up4, self.Up_conv4),
            (1, self.Msf_2, self.Up3, self.Up_conv3),
            (0, self.Msf_1, self.Up2, self.Up_conv2),
        )
        for level, msf, up, fuse in decoder:
            d = fuse(torch.cat((msf(feats, level), up(d)), 1), rescale(x, -level))
        return torch.sigmoid(self.Conv_1x1(d) + x)[..., :h, :w]

    def for_inference(self) -> RTFocuser:
        """A folded, in-place, channels_last eval copy computing the same function.

        Not for saving: its state_dict no longer has the official layout.
        """
        model = copy.deepcopy(self).eval()
        tail = model.Up_conv2.conv2
        if isinstance(tail[-1], nn.BatchNorm2d):  # the last BN feeds the 1x1 head: exact fold
            model.Conv_1x1 = fold_bn_before(tail[-1], model.Conv_1x1)
            model.Up_conv2.conv2 = tail[:-1]
        model = fuse_for_inference(model)
        model.channels_last = True
        return model.to(memory_format=torch.channels_last).requires_grad_(False)


SPEC = register_model(
    ModelSpec(
        name="rt-focuser",
        builder=RTFocuser,
        summary="RT-Focuser v1 Standard: light U-Net, 5.9M params, single frame; the CPU and fallback model",
        input_multiple=16,
        peak_elements_per_pixel=320,  # CPU process peak (an upper bound); full-size 64-ch MLP maps dominate
        recurrent=False,
        macs_per_pixel=234_896,
        formats=(dataclasses.replace(PICKLED_STATE_DICT, help="an official RT-Focuser .pth state_dict"),),
        recipe=Recipe(),  # §2.5: Adam 1e-4, cosine to 1e-6, batch 4, crop 256, MSE of the clamped output
        auto_rank=40,
        paper="RT-Focuser v1 (github.com/ReaganWu/RT-Focuser)",
    )
)
