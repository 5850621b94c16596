"""The processing stages between decode and encode: blur gate, denoise (denoise.py), model.

The gate and scene-cut detector are pure functions of small luma thumbnails; the model stage
is the engine's `ModelRunner`.
"""

from __future__ import annotations

import collections
from typing import Callable

import cv2
import numpy as np

from streamdeblur.core.frame import Frame
from streamdeblur.core.metrics import blur_score, luma
from streamdeblur.engine.runner import ModelRunner

AUTO_RELATIVE = 0.5  # auto: a frame is blurry below half the shot's typical (90th percentile) score
AUTO_WINDOW = 3000  # frames of the current shot that the auto reference looks back on
HYSTERESIS = 0.15  # auto: switch on below t*(1-h), off above t*(1+h): no flicker near the threshold
SCENE_CUT_DISTANCE = 0.5  # half-L1 distance between luma histograms that counts as a cut


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
