"""Training batches: a pure function of (seed, step), prepared a step ahead.

The step's numpy generator picks the dataset, clips, crops and flips (on a background
thread: file reading and cropping), its torch generator on the training device draws the
synthetic blur, so the GPU blurs its own data and a resumed run sees the same batches.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import torch

from streamdeblur.train.config import TrainConfig
from streamdeblur.train.datasets import STILL_BUDGET, Dataset, Sample, Sampler
from streamdeblur.train.synth import blur_mix, mix_config, soften, synthesize

SOFTEN_SIGMA = (0.5, 1.5)  # px: the scene's own softness, for the --soften share of samples


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % 2**63


class Batches:
    """Training batches: step → (blurry, sharp) [B, T, 3, crop, crop] in [0, 1] on `device`."""

    def __init__(self, datasets: list[Dataset], config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        mix = blur_mix(config.blur)
        self.blurs = [mix_config(name) for name, _ in mix]
        self.blur_weights = np.array([w for _, w in mix])
        margin = max(b.margin(config.frames, (config.crop, config.crop)) for b in self.blurs)
        still_budget = STILL_BUDGET // max(len(datasets), 1)  # one memory budget for all --data
        self.samplers = [Sampler(d, config.frames, config.crop, margin, still_budget) for d in datasets]
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")
        self._ahead: dict[int, concurrent.futures.Future] = {}

    def _cpu(self, step: int) -> tuple[Sampler, list[Sample]]:
        rng = np.random.default_rng([self.config.seed, step])
        sampler = self.samplers[int(rng.integers(len(self.samplers)))]
        return sampler, [sampler(rng) for _ in range(self.config.batch)]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        future = self._ahead.pop(step, None)
        sampler, samples = future.result() if future else self._cpu(step)
        self._ahead[step + 1] = self._pool.submit(self._cpu, step + 1)
        config = self.config
        if not sampler.data.synthetic:
            blurry = self._upload(np.stack([s.blurry for s in samples]))
            return blurry, self._upload(np.stack([s.sharp for s in samples]))
        if all(s.still for s in samples):
            sharp = self._upload(np.stack([s.sharp[0] for s in samples])[:, None])[:, 0]
        else:
            frames = [np.repeat(s.sharp, config.frames, 0) if s.still else s.sharp for s in samples]
            sharp = self._upload(np.stack(frames))
        if config.soften > 0:
            sharp = self._soften(sharp, np.random.default_rng([config.seed, step, 2]))
        g = torch.Generator(self.device).manual_seed(_step_seed(config.seed, step))
        # each sample draws its preset from the mix: every batch holds about the mix's shares,
        # so the gradient's scale does not jump from step to step (Adam diverged when whole
        # steps of unmoved frames alternated with whole steps of strong blur)
        kinds = np.random.default_rng([config.seed, step, 1]).choice(len(self.blurs), len(samples), p=self.blur_weights)
        groups = [np.flatnonzero(kinds == k) for k in range(len(self.blurs))]
        size = (config.crop, config.crop)
        pairs = [
            synthesize(sharp[torch.from_numpy(idx).to(sharp.device)], self.blurs[k], config.frames, size, g)
            for k, idx in enumerate(groups)
            if idx.size
        ]
        order = torch.from_numpy(np.argsort(np.concatenate(groups))).to(sharp.device)
        blurry, target = (torch.cat(parts)[order] for parts in zip(*pairs, strict=True))
        return blurry, target

    def _soften(self, sharp: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The sources of a `--soften` share of the samples softened (`synth.soften`)."""
        chosen = np.flatnonzero(rng.random(sharp.shape[0]) < self.config.soften)
        if not chosen.size:
            return sharp
        sigma = torch.from_numpy(rng.uniform(*SOFTEN_SIGMA, chosen.size)).to(sharp)
        index = torch.from_numpy(chosen).to(sharp.device)
        return sharp.index_copy(0, index, soften(sharp[index], sigma))

    def _upload(self, array: np.ndarray) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] → float [B, T, 3, H, W] in [0, 1] on the device."""
        host = torch.from_numpy(np.ascontiguousarray(array))
        if self.device.type == "cuda":
            host = host.pin_memory()
        return host.to(self.device, non_blocking=True).permute(0, 1, 4, 2, 3).float().div_(255)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
