"""Helpers shared by the models: padding, and the exact rewrites behind `for_inference()`.

An eval-mode BatchNorm is a per-channel affine map y = s·x + t. Next to a convolution it can
be absorbed into the convolution's weights, which removes a full pass over a feature map:
- BN *after* a conv folds into that conv exactly;
- BN *before* a 1x1 conv (no padding, no groups) folds into it exactly; before a padded k x k
  conv it does not, because the zero padding would then see t instead of 0.
A BatchNorm that cannot fold, and an activation, can still overwrite a temporary in place.
"""

from __future__ import annotations

import torch
from torch import nn


def bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The (scale, shift) of an eval-mode BatchNorm: bn(x) = scale·x + shift per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A copy of `conv` (same geometry) with the given weight and bias."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(weight.device, weight.dtype)
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)


@torch.no_grad()
def fold_bn_after(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """conv → BN as one conv: scale the output channels, shift the bias."""
    scale, shift = bn_affine(bn)
    return _conv_like(conv, conv.weight * scale.view(-1, 1, 1, 1), _bias(conv) * scale + shift)


def is_pointwise(conv: nn.Module) -> bool:
    """A dense 1x1 conv: the only kind a preceding BatchNorm folds into exactly."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.kernel_size == (1, 1)
        and conv.groups == 1
        and conv.padding == (0, 0)
        and conv.stride == (1, 1)
    )


@torch.no_grad()
def fold_bn_before(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """BN → 1x1 conv as one conv: W' = W·diag(s), b' = b + W·t."""
    if not is_pointwise(conv):
        raise ValueError("a BatchNorm folds exactly only into a following dense 1x1 conv")
    scale, shift = bn_affine(bn)
    weight = conv.weight * scale.view(1, -1, 1, 1)
    return _conv_like(conv, weight, _bias(conv) + conv.weight.flatten(1) @ shift)


class InplaceGELU(nn.GELU):
    """GELU written over its input (inference only, on a temporary nothing else reads)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.gelu_(x, approximate=self.approximate)


class InplaceAffine(nn.Module):
    """An eval-mode BatchNorm as scale·x + shift, written over its input (inference only)."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale, shift = (t.detach().view(1, -1, 1, 1).clone() for t in bn_affine(bn))
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale, out=x)


def fuse_sequential(seq: nn.Sequential) -> nn.Sequential:
    """`seq` for inference: BatchNorms folded where exact, elementwise ops in place where safe.

    conv → BN folds backwards; otherwise BN → dense 1x1 conv folds forwards. A GELU or a
    remaining BatchNorm whose input is a temporary made inside `seq` (a conv output, possibly
    already passed through in-place ops) overwrites it: on CPU, fresh full-size buffers cost
    more than the arithmetic (allocation and page faults).
    """
    out: list[nn.Module] = []
    items = list(seq)
    fresh = False  # does the running value live in a buffer only this Sequential uses?
    i = 0
    while i < len(items):
        cur = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        i += 1
        if isinstance(cur, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            cur = fold_bn_after(cur, nxt)
            i += 1
        elif isinstance(cur, nn.BatchNorm2d) and is_pointwise(nxt):
            cur = fold_bn_before(cur, nxt)
            i += 1
        elif fresh and type(cur) is nn.GELU:
            cur = InplaceGELU(cur.approximate)
        elif fresh and isinstance(cur, nn.BatchNorm2d):
            cur = InplaceAffine(cur)
        out.append(cur)
        fresh = isinstance(cur, nn.Conv2d) or (fresh and isinstance(cur, (InplaceGELU, InplaceAffine, nn.ReLU)))
    return nn.Sequential(*out)


def fuse_for_inference(module: nn.Module) -> nn.Module:
    """The inference form of `module` (eval mode), built bottom-up, reusing its submodules.

    A submodule with a `fused()` method supplies its own inference form (for folds that
    cross a sum, which a Sequential scan cannot see); every plain Sequential goes through
    `fuse_sequential`. Returns the module to use in place of `module`.
    """
    for name, child in module.named_children():
        setattr(module, name, fuse_for_inference(child))
    if hasattr(module, "fused"):
        return module.fused()
    if type(module) is nn.Sequential:  # subclasses (e.g. residual blocks) add their own logic
        return fuse_sequential(module)
    return module


class BranchedConv(nn.Conv2d):
    """A 3x3 convolution trained beside two branches, 3x3 → BN and 1x1 → BN, that fold into it.

    Reparameterisation as in RepSR (Wang et al., 2022): the branches add nothing a single
    3x3 convolution cannot compute, but their batch normalisation changes how training moves
    the weights, which is what RepSR found makes such branches pay in restoration networks.
    The branches' BN scales start at zero, so wrapping a trained convolution leaves the model's
    function unchanged; `folded()` returns the one convolution that inference runs.
    """

    def __init__(self, conv: nn.Conv2d):
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1:
            raise ValueError("only a dense, padded 3x3 convolution of stride 1 takes branches")
        cin, cout = conv.in_channels, conv.out_channels
        super().__init__(cin, cout, 3, padding=1, device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            self.bias.copy_(_bias(conv))
        self.wide = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.point = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        for branch in (self.wide, self.point):
            branch.to(conv.weight.device, conv.weight.dtype)
            nn.init.zeros_(branch[1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.wide(x) + self.point(x)

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        """The single 3x3 convolution equal to this one in eval mode."""
        wide = fold_bn_after(*self.wide)
        point = fold_bn_after(*self.point)
        weight = self.weight + wide.weight + nn.functional.pad(point.weight, (1, 1, 1, 1))
        return _conv_like(self, weight, self.bias + wide.bias + point.bias)


def add_branches(module: nn.Module, names: tuple[str, ...]) -> None:
    """Wrap every convolution called one of `names` (attribute names, at any depth) in a
    `BranchedConv`, in place."""
    for parent in list(module.modules()):
        for name in names:
            child = getattr(parent, name, None)
            if isinstance(child, nn.Conv2d) and not isinstance(child, BranchedConv):
                setattr(parent, name, BranchedConv(child))


def fold_branches(module: nn.Module) -> None:
    """Replace every `BranchedConv` in `module` by its folded convolution, in place."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, BranchedConv):
                setattr(parent, name, child.folded())


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges of [B, C, H, W] up to a multiple of `multiple`.

    Reflection, as the RT-Focuser-v2 inference script does; an image smaller than the pad
    cannot be reflected, so it is edge-replicated instead.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
