"""What a training run trains: its settings, checked and filled in from the model's recipe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from streamdeblur.core.errors import UsageError
from streamdeblur.engine.ensemble import check_views
from streamdeblur.models import get_spec
from streamdeblur.train.datasets import DEFAULT_AVERAGE
from streamdeblur.train.losses import PIXEL_LOSSES
from streamdeblur.train.synth import blur_mix


@dataclass
class TrainConfig:
    model: str
    data: list[str]
    steps: int
    batch: int | None = None  # None: the model's recipe
    crop: int | None = None
    frames: int | None = None
    lr: float | None = None
    loss: str | None = None
    blur: str | None = None
    soften: float = 0.0  # share of synthetic samples whose scene is softened first (synth.soften)
    average: int = DEFAULT_AVERAGE
    seed: int = 0
    ema: float = 0.999
    init: str | None = None
    branches: bool = False  # reparameterisation branches beside the model's `branched` convolutions
    teacher: str | None = None  # distillation: a model name or weights file (train/teacher.py)
    teacher_mix: float = 0.5
    teacher_views: int = 1  # views of each frame the teacher's output is averaged over (train/teacher.py)
    train_only: list[str] | None = None  # parameter-name prefixes: the rest stays frozen (None: all)
    checkpoint_every: int = 500
    keep: int = 2
    log_every: int = 10
    eval_data: list[str] | None = None  # None: the training data's test split
    eval_every: int = 0
    eval_max: int | None = 16  # clips per dataset in evaluations during and after training
    eval_crop: int | None = None

    def resolved(self) -> TrainConfig:
        """The required settings checked, unset hyper-parameters filled in from the model's recipe."""
        for name in ("model", "data", "steps"):
            if not getattr(self, name):
                raise UsageError(f"--{name} is required (unless resuming a run with --resume)")
        recipe = get_spec(self.model).recipe
        keys = ("batch", "crop", "frames", "lr", "loss", "blur")
        fill = {k: getattr(recipe, k) for k in keys if getattr(self, k) is None}
        config = dataclasses.replace(self, **fill)
        config.check()
        return config

    def check(self) -> None:
        if self.loss not in PIXEL_LOSSES:
            raise UsageError(f"unknown loss {self.loss!r} (use {', '.join(PIXEL_LOSSES)})")
        blur_mix(self.blur)
        if self.crop < 16:
            raise UsageError("--crop must be at least 16")
        if not 0 <= self.soften < 1:
            raise UsageError(f"--soften must be in [0, 1), not {self.soften}")
        if not 0 < self.teacher_mix <= 1:
            raise UsageError(f"--teacher-mix must be in (0, 1], not {self.teacher_mix}")
        check_views(self.teacher_views, "--teacher-views")
