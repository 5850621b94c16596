"""Pipeline pieces: bounded queues, the blur gate, scene cuts, denoise, the model runner."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from media import motion_blur, texture

from streamdeblur.models.registry import DeblurModel, ModelSpec
from streamdeblur.pipeline.denoise import bilateral
from streamdeblur.pipeline.queues import StageQueue
from streamdeblur.pipeline.stages import (
    BlurGate,
    ModelRunner,
    SceneCutDetector,
    blur_score,
    luma,
)


def test_queue_blocks_when_full_and_wakes_on_halt() -> None:
    halt = threading.Event()
    q: StageQueue[int] = StageQueue(2, halt)
    assert q.put(1) and q.put(2)
    results = []
    t = threading.Thread(target=lambda: results.append(q.put(3)))
    t.start()
    time.sleep(0.2)
    assert t.is_alive()  # file mode: the producer waits, nothing is dropped
    halt.set()
    t.join(2)
    assert results == [False] and q.dropped == 0


def test_queue_drop_oldest_keeps_newest() -> None:
    q: StageQueue[int] = StageQueue(3, threading.Event(), drop_oldest=True)
    for i in range(10):
        assert q.put(i)
    q.close()
    assert list(q) == [7, 8, 9] and q.dropped == 7


def test_queue_iteration_ends_on_close_after_draining() -> None:
    q: StageQueue[int] = StageQueue(4, threading.Event())
    q.put(1)
    q.put(2)
    q.close()
    assert list(q) == [1, 2]


def test_blur_score_drops_with_motion_blur() -> None:
    sharp = texture(320, 180)
    scores = [blur_score(luma(motion_blur(sharp, n))) for n in (1, 3, 7, 15)]
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.3 * scores[0]


def test_luma_is_measured_at_analysis_width() -> None:
    assert luma(np.zeros((1080, 1920, 3), np.uint8)).shape == (270, 480)
    assert luma(np.zeros((48, 64, 3), np.uint16)).shape == (48, 64)


def test_auto_gate_skips_sharp_first_half_and_processes_blurred_second_half() -> None:
    gate = BlurGate(None)
    rng = np.random.default_rng(1)
    sharp = list(1000 * (1 + 0.1 * rng.standard_normal(30)))
    blurry = list(300 * (1 + 0.1 * rng.standard_normal(30)))
    decisions = [gate(s) for s in sharp + blurry]
    assert not any(decisions[:30]) and all(decisions[30:])


def test_fixed_threshold_processes_exactly_the_frames_below_it() -> None:
    """`--blur-threshold 640`: frames scoring 615-628 are processed, whatever came before them."""
    gate = BlurGate(640.0)
    scores = [700, 628, 615, 639.9, 640, 641, 700, 620, 628, 900]
    assert [gate(s) for s in scores] == [s < 640 for s in scores]


def test_auto_threshold_has_hysteresis_against_flicker() -> None:
    gate = BlurGate(None)
    for _ in range(30):
        gate(200.0)  # the shot's reference: the auto threshold is half its 90th percentile, 100
    decisions = [gate(s) for s in [80, 102, 98, 104, 97, 103, 120, 99, 95, 90, 84]]
    # on below 85; stays on until above 115; then off until below 85 again
    assert decisions == [True, True, True, True, True, True, False, False, False, False, True]


def test_scene_cut_detector_ignores_motion_and_blur_but_sees_cuts() -> None:
    detect = SceneCutDetector()
    a = texture(160, 90)
    assert not detect(luma(a))
    assert not detect(luma(motion_blur(texture(160, 90, shift=5), 9)))
    dark = (texture(160, 90, seed=3) // 4).astype(np.uint8)
    assert detect(luma(dark))


def test_bilateral_denoise_reduces_noise_keeps_edges() -> None:
    clean = np.zeros((64, 64, 3), np.uint8)
    clean[:, 32:] = 200
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
    out = bilateral(noisy, 1.0, torch.device("cpu"))
    assert np.abs(out.astype(int) - clean).mean() < np.abs(noisy.astype(int) - clean).mean()
    assert out[:, 28].mean() < 30 and out[:, 36].mean() > 170  # the edge stays sharp
    out16 = bilateral(noisy.astype(np.uint16) * 257, 1.0, torch.device("cpu"))
    assert out16.dtype == np.uint16 and np.abs(out16 // 257 - out.astype(int)).mean() < 2


class _Echo(DeblurModel):
    """A recurrent toy that returns 0.5 * (x + prev): shows what `prev` the runner passes."""

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (x + (x if prev is None else prev))


def test_model_runner_recurrence_and_skipped_frames() -> None:
    spec = ModelSpec("echo", _Echo, "", 1, True, 0)
    runner = ModelRunner(_Echo(), spec, torch.device("cpu"))
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert (runner(white) == 255).all()  # first frame: prev is the frame itself
    assert (runner(black) == 128).all()  # 0.5 * (0 + 1)
    runner.observe(black)  # a skipped frame becomes prev
    assert (runner(white) == 128).all()
    runner.reset()
    assert (runner(black) == 0).all()


def test_model_runner_sixteen_bit_white_survives_fp16() -> None:
    """65535 overflows fp16: frames must be scaled before they are cast."""
    spec = ModelSpec("echo", _Echo, "", 1, False, 0)
    runner = ModelRunner(_Echo(), spec, torch.device("cpu"), precision="fp16")
    image = np.full((8, 8, 3), 65535, np.uint16)
    image[0, 0] = 1000
    out = runner(image)
    assert out[4, 4, 0] == 65535 and abs(int(out[0, 0, 0]) - 1000) < 64


def test_model_runner_sixteen_bit_roundtrip() -> None:
    spec = ModelSpec("echo", _Echo, "", 1, False, 0)
    runner = ModelRunner(_Echo(), spec, torch.device("cpu"))
    image = np.arange(48, dtype=np.uint16).reshape(4, 4, 3) * 1300
    assert np.array_equal(runner(image), image)
