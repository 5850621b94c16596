"""What the file, live and batch modes share: the run's options, and the frame stages they set up."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamdeblur.engine.build import Engine
from streamdeblur.io.sinks import EncodeOptions
from streamdeblur.pipeline.denoise import denoiser
from streamdeblur.pipeline.stages import FrameProcessor
from streamdeblur.pipeline.stats import RunStats


@dataclass
class RunConfig:
    """Options shared by the file, live and batch commands."""

    model: str = "auto"
    weights: str | None = None
    device: str = "auto"
    precision: str = "auto"
    views: int = 1  # views of each frame run and averaged (engine/ensemble.py)
    selective: bool = False
    blur_threshold: float | None = None  # None: auto
    denoise: str = "none"  # a name in pipeline/denoise.py's DENOISERS, or none
    denoise_strength: float = 1.0
    overwrite: bool = False
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    record_frames: bool = True  # per-frame records, for the report only: long runs without one keep none

    def processor(self, engine: Engine, stats: RunStats) -> FrameProcessor:
        """gate → denoise → model as these options say, timed into `stats` (the denoiser runs
        on the model's device: TV denoising runs on a GPU too)."""
        denoise = denoiser(self.denoise, self.denoise_strength, engine.runner.device)
        return FrameProcessor(engine.runner, stats.stages, self.selective, self.blur_threshold, denoise)
