"""`streamdeblur eval`: how much a model improves blurry frames against their ground truth.

Frames go through the product's own model stage (`ModelRunner`: 8-bit in, 8-bit out, the
recurrent state carried along a clip and reset between clips), so the figures are those of
what `streamdeblur` writes. Per frame: PSNR and SSIM of the output and of the blurry input
against the ground truth, and the Laplacian-variance sharpness of input, output and ground
truth; per dataset and overall, their means and the model's time per frame.

Sharp-only data is blurred with synth.py on the CPU with a seed drawn from `--seed` and the
clip's name, so a held-out evaluation is the same on every machine and does not change when
other files are added. A still becomes a `frames`-frame sequence along one camera path; a
video's frames are blurred one by one, each centred on its own mid-exposure view.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from streamdeblur.core.errors import InputError
from streamdeblur.core.metrics import finite, psnr, sharpness, ssim
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.train.datasets import Dataset, Pair, eval_clips
from streamdeblur.train.synth import SequenceBlur, preset

MIN_SIZE = 16


@dataclass(frozen=True)
class EvalOptions:
    blur: str = "default"  # synth.py preset for sharp-only data
    seed: int = 0
    frames: int = 1  # frames of the synthetic sequence made from each still
    crop: int | None = None  # centre crop (square), for quick runs on big frames
    max_clips: int | None = None  # per dataset
    max_frames: int | None = None  # per clip
    denoise: Callable[[np.ndarray], np.ndarray] | None = None  # before the model, as --denoise runs it


def clip_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:15], 16)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """An 8-bit HxWx3 image as a [1, 3, H, W] float tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255)


def _to_image(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()


def synthetic_pairs(name: str, frames: Iterator[Pair], options: EvalOptions) -> Iterator[Pair]:
    """Blur a clip's sharp frames reproducibly (see the module docstring)."""
    config = preset(options.blur)
    g = torch.Generator().manual_seed(clip_seed(options.seed, name))
    first = next(frames, None)
    if first is None:
        return
    second = next(frames, None)
    h, w = first[1].shape[:2]
    count = options.frames if second is None else 1
    if options.crop:  # a centre crop, smaller where the frame has no room for it and its margins
        margin = config.margin(count, (options.crop, options.crop))
        size = (min(options.crop, h - 2 * margin), min(options.crop, w - 2 * margin))
    else:
        margin = config.margin(count, (h, w))
        size = (h - 2 * margin, w - 2 * margin)
    if min(size) < MIN_SIZE:
        raise InputError(f"{name}: {w}x{h} is too small for blur preset {options.blur!r} ({margin} px margins)")
    source = (size[0] + 2 * margin, size[1] + 2 * margin)
    blur = SequenceBlur.random(1, config, count, size, g)
    if second is None:  # a still, filmed `count` times
        blurry, sharp = blur.render(to_tensor(_centre_crop(first[1], source)), g, 0, count)
        for t in range(count):
            yield _to_image(blurry[:, t]), _to_image(sharp[:, t])
        return
    for index, (_, image) in enumerate(itertools.chain([first, second], frames)):
        centre = torch.full((1,), index, dtype=torch.float32) + blur.exposure / 2
        view = dataclasses.replace(blur, path=blur.path.centred(centre))
        blurry, sharp = view.render(to_tensor(_centre_crop(image, source)), g, index, 1)
        yield _to_image(blurry[:, 0]), _to_image(sharp[:, 0])


def _centre_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centre `size` (h, w) of an image (all of it along a side that is smaller)."""
    h, w = image.shape[:2]
    y, x = max(0, (h - size[0]) // 2), max(0, (w - size[1]) // 2)
    return image[y : y + size[0], x : x + size[1]]


def eval_pairs(data: Dataset, options: EvalOptions) -> Iterator[tuple[str, Iterator[Pair]]]:
    """(clip name, (blurry, sharp) frames) for every clip to evaluate, blurred where needed."""
    clips = eval_clips(data)
    for name, frames in itertools.islice(clips, options.max_clips):
        if data.synthetic:
            frames = synthetic_pairs(name, frames, options)
        elif options.crop:
            square = (options.crop, options.crop)
            frames = ((_centre_crop(b, square), _centre_crop(s, square)) for b, s in frames)
        yield name, itertools.islice(frames, options.max_frames)


def input_metrics(blurry: np.ndarray, sharp: np.ndarray) -> dict[str, float]:
    """The model-independent figures of a frame: PSNR/SSIM of the blurry input (float64, 8-bit
    images scaled to [0, 1]) and the sharpness of input and ground truth."""
    b, s = (to_tensor(x).double() for x in (blurry, sharp))
    return {
        "psnr_input": finite(psnr(b, s).item()),
        "ssim_input": ssim(b, s).item(),
        "sharpness_input": sharpness(blurry),
        "sharpness_ground_truth": sharpness(sharp),
    }


def output_metrics(output: np.ndarray, sharp: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM and sharpness of the model's output, as `input_metrics` measures the input."""
    o, s = (to_tensor(x).double() for x in (output, sharp))
    return {
        "psnr_output": finite(psnr(o, s).item()),
        "ssim_output": ssim(o, s).item(),
        "sharpness_output": sharpness(output),
    }


@dataclass
class EvalFrame:
    """A (blurry, sharp) frame to evaluate on and its `input_metrics`."""

    blurry: np.ndarray
    sharp: np.ndarray
    inputs: dict[str, float]


def eval_frames(data: Dataset, options: EvalOptions) -> Iterator[tuple[str, Iterator[EvalFrame]]]:
    """`eval_pairs` with each frame checked and its input side measured."""
    for name, pairs in eval_pairs(data, options):
        yield name, _measured(data, name, pairs)


def _measured(data: Dataset, name: str, pairs: Iterator[Pair]) -> Iterator[EvalFrame]:
    for index, (blurry, sharp) in enumerate(pairs):
        if blurry is None or blurry.shape != sharp.shape:
            raise InputError(f"{data.spec} {name} frame {index}: blurry and sharp sizes differ")
        yield EvalFrame(blurry, sharp, input_metrics(blurry, sharp))


@dataclass
class EvalSet:
    """Evaluation frames read, blurred and measured once, for evaluating many models on them
    (training evaluates every --eval-every steps and twice more at the end)."""

    datasets: list[Dataset]
    clips: list[list[tuple[str, list[EvalFrame]]]]  # per dataset: (clip name, frames)


def prepare(datasets: list[Dataset], options: EvalOptions, max_bytes: int | None = None) -> EvalSet | None:
    """The frames `evaluate(runner, datasets, options)` would read, as an EvalSet; None where
    their images take more than `max_bytes` (then they are better read again each time)."""
    total, clips = 0, []
    for data in datasets:
        found = []
        for name, frames in eval_frames(data, options):
            kept = []
            for frame in frames:  # copies: a crop is a view that would keep its whole image alive
                kept.append(EvalFrame(frame.blurry.copy(), frame.sharp.copy(), frame.inputs))
                total += frame.blurry.nbytes + frame.sharp.nbytes
                if max_bytes is not None and total > max_bytes:
                    return None
            found.append((name, kept))
        clips.append(found)
    return EvalSet(datasets, clips)


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Means over frames, grouped as the report shows them."""
    if not rows:
        return {"frames": 0}
    mean = {key: statistics.fmean(r[key] for r in rows) for key in rows[0] if key not in ("clip", "frame")}
    gain = {k: mean[f"{k}_output"] - mean[f"{k}_input"] for k in ("psnr", "ssim")}
    timed = [r["ms"] for r in rows if r.get("timed")]
    ms = statistics.fmean(timed) if timed else mean["ms"]
    return {
        "frames": len(rows),
        **{k: {"input": mean[f"{k}_input"], "output": mean[f"{k}_output"], "gain": gain[k]} for k in ("psnr", "ssim")},
        "sharpness": {
            "input": mean["sharpness_input"],
            "output": mean["sharpness_output"],
            "ground_truth": mean["sharpness_ground_truth"],
        },
        "ms_per_frame": ms,
        "fps": 1000 / ms if ms else None,
    }


def evaluate(
    runner: ModelRunner,
    datasets: list[Dataset] | EvalSet,
    options: EvalOptions,
    on_frame: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run every clip of `datasets` through `runner` and measure; returns the report dict.

    `datasets` may be an EvalSet prepared from them with the same `options` (the same
    figures, without reading, blurring and measuring the inputs again). The first frame a
    runner processes is left out of the speed figure (warm-up: lazy initialisation, cuDNN
    autotuning).
    """
    if isinstance(datasets, EvalSet):
        sources = list(zip(datasets.datasets, datasets.clips, strict=True))
    else:
        sources = [(data, eval_frames(data, options)) for data in datasets]
    report: dict[str, Any] = {"datasets": [], "clips": []}
    all_rows: list[dict[str, Any]] = []
    warm = False
    for data, clips in sources:
        rows: list[dict[str, Any]] = []
        for name, frames in clips:
            runner.reset()
            clip_rows = []
            for index, frame in enumerate(frames):
                start = time.perf_counter()
                output = runner(options.denoise(frame.blurry) if options.denoise else frame.blurry)
                ms = 1000 * (time.perf_counter() - start)
                metrics = {**frame.inputs, **output_metrics(output, frame.sharp)}
                clip_rows.append({"clip": name, "frame": index, "ms": ms, "timed": warm, **metrics})
                warm = True
                if on_frame:
                    on_frame(len(all_rows) + len(rows) + len(clip_rows))
            if clip_rows:
                summary = summarise(clip_rows)
                report["clips"].append(
                    {
                        "data": data.spec,
                        "name": name,
                        "frames": len(clip_rows),
                        "psnr_input": summary["psnr"]["input"],
                        "psnr_output": summary["psnr"]["output"],
                        "ssim_input": summary["ssim"]["input"],
                        "ssim_output": summary["ssim"]["output"],
                    }
                )
            rows.extend(clip_rows)
        if not rows:
            raise InputError(f"{data.spec}: no frames to evaluate in the {data.split} split")
        report["datasets"].append({"data": data.spec, "split": data.split, **summarise(rows)})
        all_rows.extend(rows)
    report.update(summarise(all_rows))
    return report
