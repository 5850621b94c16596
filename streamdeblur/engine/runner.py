"""The model runner: one model on frames, on the CPU or on its own CUDA stream.

It owns the device, precision, recurrent state and, on CUDA, pinned host buffers; frames
too large for the device's memory go through in tiles (tiling.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from streamdeblur.engine import tiling
from streamdeblur.engine.device import DTYPES
from streamdeblur.models.registry import ModelSpec


@dataclass
class ModelRunner:
    """Runs one model on frames, keeping recurrent state, on CPU or on its own CUDA stream.

    Frames arrive as uint8/uint16 H x W x 3 arrays. On CUDA they are copied into a pinned
    host buffer, uploaded with a non-blocking copy on the runner's stream, converted to the
    model's precision on the GPU, and the uint8/uint16 result comes back the same way; only
    the raw integers cross the bus. `prev` is the previous unclamped output (or, for a frame
    the gate skipped, that frame itself), as the recurrent models expect.
    """

    model: nn.Module
    spec: ModelSpec
    device: torch.device
    precision: str = "fp32"

    def __post_init__(self) -> None:
        self.dtype = DTYPES[self.precision]
        self.model = self.model.to(self.device, self.dtype).eval()
        self.prev: torch.Tensor | None = None
        self._cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._pinned_in: torch.Tensor | None = None
        self._pinned_out: torch.Tensor | None = None
        self._tiles: dict[tuple[int, int], tuple[int, int] | None] = {}
        self._uploaded = torch.cuda.Event() if self._cuda else None  # the pinned input buffer is free again

    def _on_stream(self) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(self.stream) if self._cuda else contextlib.nullcontext()

    def reset(self) -> None:
        """Start a new shot: the next frame has no previous frame."""
        self.prev = None

    def _upload(self, image: np.ndarray) -> torch.Tensor:
        """[B, 3, H, W] in [0, 1] at the model's dtype, channels-last in memory, from one
        H x W x 3 frame (B = 1) or a B x H x W x 3 stack."""
        host = torch.from_numpy(image.astype(np.int32) if image.dtype == np.uint16 else image)
        if self._cuda:
            if self._pinned_in is None or self._pinned_in.shape != host.shape or self._pinned_in.dtype != host.dtype:
                self._pinned_in = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
            else:  # the previous upload may still be reading the buffer
                self._uploaded.synchronize()
            self._pinned_in.copy_(host)
            host = self._pinned_in.to(self.device, non_blocking=True)
            self._uploaded.record()
        scale = 255.0 if image.dtype == np.uint8 else 65535.0
        batch = host if host.dim() == 4 else host.unsqueeze(0)
        # Scale in fp32 and then cast: 65535 itself overflows fp16 (its largest value is 65504).
        return batch.permute(0, 3, 1, 2).float().div_(scale).to(self.dtype)

    def _download(self, out: torch.Tensor, dtype: np.dtype) -> np.ndarray:
        """B x H x W x 3 integers of `dtype`."""
        scale = 255.0 if dtype == np.uint8 else 65535.0
        q = out.float().clamp(0, 1).mul_(scale).round_()  # not in place: `out` may be the recurrent state
        q = q.to(torch.uint8 if dtype == np.uint8 else torch.int32).permute(0, 2, 3, 1)
        if self._cuda:
            if self._pinned_out is None or self._pinned_out.shape != q.shape or self._pinned_out.dtype != q.dtype:
                self._pinned_out = torch.empty(q.shape, dtype=q.dtype, pin_memory=True)
            self._pinned_out.copy_(q, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            q = self._pinned_out
        return q.numpy().astype(dtype, copy=True)

    def _forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        return self.model(x, prev) if self.spec.recurrent else self.model(x)

    def tile_for(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """Tile size for frames of `size` (H, W) if they would not fit in memory whole, else None.

        Decided once per frame size, from the spec's peak activations and the free memory then.
        """
        if size not in self._tiles:
            self._tiles[size] = tiling.tile_for(self.spec, size, self.dtype, tiling.memory_budget(self.device))
        return self._tiles[size]

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Deblur one frame and remember the result as the next frame's `prev`."""
        with self._on_stream():
            x = self._upload(image)
            tile = self.tile_for(image.shape[:2])
            y = tiling.tiled(self._forward, x, self.prev, tile) if tile else self._forward(x, self.prev)
            if self.spec.recurrent:
                self.prev = y
            return self._download(y, image.dtype)[0]

    @torch.inference_mode()
    def batch(self, images: np.ndarray) -> np.ndarray:
        """Deblur a B x H x W x 3 stack of independent frames (each the first of its shot) in
        one forward pass; for a recurrent model `prev` becomes the batch's output."""
        with self._on_stream():
            y = self.model(self._upload(images))
            if self.spec.recurrent:
                self.prev = y
            return self._download(y, images.dtype)

    @torch.inference_mode()
    def observe(self, image: np.ndarray) -> None:
        """A frame that skipped the model still becomes the previous frame of a recurrent model."""
        if self.spec.recurrent:
            with self._on_stream():
                self.prev = self._upload(image)
