"""The processing stages between decode and encode: blur gate, denoise (denoise.py), model.

The gate and scene-cut detector are pure functions of small luma thumbnails; the model
stage owns the device, precision, recurrent state and (on CUDA) its own stream with pinned
host buffers.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn

from streamdeblur.hardware import DTYPES
from streamdeblur.io.frame import Frame, to_rgb8
from streamdeblur.models.registry import ModelSpec
from streamdeblur.pipeline import tiling

ANALYSIS_WIDTH = 480  # blur scores are measured at this width, so thresholds do not depend on resolution
AUTO_RELATIVE = 0.5  # auto: a frame is blurry below half the shot's typical (90th percentile) score
AUTO_WINDOW = 3000  # frames of the current shot that the auto reference looks back on
HYSTERESIS = 0.15  # auto: switch on below t*(1-h), off above t*(1+h): no flicker near the threshold
SCENE_CUT_DISTANCE = 0.5  # half-L1 distance between luma histograms that counts as a cut


def luma(image: np.ndarray) -> np.ndarray:
    """8-bit luma at the analysis width (area-downscaled first, so 16-bit frames shrink before
    they are reduced to 8 bits; never upscaled)."""
    small = image
    h, w = small.shape[:2]
    if w > ANALYSIS_WIDTH:
        small = cv2.resize(small, (ANALYSIS_WIDTH, max(1, round(h * ANALYSIS_WIDTH / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(to_rgb8(small), cv2.COLOR_RGB2GRAY)


def blur_score(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for sharp detail, low for blur (the classic measure)."""
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def luma_histogram(gray: np.ndarray) -> np.ndarray:
    hist = cv2.calcHist([gray], [0], None, [32], [0, 256]).ravel()
    return hist / max(hist.sum(), 1.0)


class BlurGate:
    """Decides which frames go through the model (blurry) and which pass through (sharp).

    With a fixed threshold, frames scoring below it are blurry: exactly those, as the user
    asked. With `threshold=None` (auto) the threshold is `AUTO_RELATIVE` times the
    90th-percentile score of the current shot, so it adapts to the clip's content (absolute
    scores differ 100x between scenes), and hysteresis keeps the decision from flickering
    between processed and raw near a threshold nobody chose.
    """

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self._history: collections.deque[float] = collections.deque(maxlen=AUTO_WINDOW)
        self._processing: bool | None = None

    def reset(self) -> None:
        """Forget the shot (after a scene cut): the auto reference starts again."""
        self._history.clear()
        self._processing = None

    def __call__(self, score: float) -> bool:
        if self.threshold is not None:
            return score < self.threshold
        self._history.append(score)
        t = AUTO_RELATIVE * float(np.percentile(self._history, 90))
        if self._processing is None:
            self._processing = score < t
        elif self._processing:
            self._processing = score < t * (1 + HYSTERESIS)
        else:
            self._processing = score < t * (1 - HYSTERESIS)
        return self._processing


class SceneCutDetector:
    """Flags a frame whose luma histogram differs strongly from the previous frame's.

    Histograms ignore where things are, so camera motion and blur do not trigger it; a cut to
    a different shot does. A cut resets recurrent model state and the auto blur reference.
    """

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def __call__(self, gray: np.ndarray) -> bool:
        hist = luma_histogram(gray)
        cut = self._previous is not None and 0.5 * float(np.abs(hist - self._previous).sum()) > SCENE_CUT_DISTANCE
        self._previous = hist
        return cut


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


class FrameProcessor:
    """gate → denoise → model for one frame, timing each stage into `stages`."""

    def __init__(
        self,
        runner: ModelRunner,
        stages: dict,
        selective: bool,
        threshold: float | None,
        denoise: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.runner = runner
        self.stages = stages
        self.selective = selective
        self.denoise = denoise
        self.gate = BlurGate(threshold)
        self.cuts = SceneCutDetector()

    def __call__(self, frame: Frame) -> Frame:
        with self.stages["gate"].time():
            gray = luma(frame.image)
            frame.blur_score = blur_score(gray)
            frame.scene_cut = self.cuts(gray)
            if frame.scene_cut:
                self.gate.reset()
            if frame.scene_cut or frame.gap:
                self.runner.reset()
            frame.processed = self.gate(frame.blur_score) if self.selective else True
        if not frame.processed:
            self.runner.observe(frame.image)
            return frame
        if self.denoise:
            with self.stages["denoise"].time():
                frame.image = self.denoise(frame.image)
        with self.stages["model"].time():
            frame.image = self.runner(frame.image)
        return frame
