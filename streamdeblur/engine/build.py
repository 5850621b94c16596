"""`build_engine`: the model chosen, loaded and placed on its device, ready for the first frame.

Every mode builds its engine here: file, live and batch runs, bench (untrained weights:
speed does not depend on them), eval, and training's own evaluations (the model in hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from torch import nn

from streamdeblur.core.errors import UsageError
from streamdeblur.core.report import EngineFields
from streamdeblur.engine.choice import choose_model, unsuitable
from streamdeblur.engine.device import describe_device, resolve_device, resolve_precision
from streamdeblur.engine.ensemble import SelfEnsemble, check_views, in_views
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.engine.weights import find_default_weights, load_model, resolve_weights
from streamdeblur.models import ModelSpec, create_model, get_spec

UNTRAINED = "none (random initialisation)"
IN_TRAINING = "the run's current weights"


class EngineRequest(Protocol):
    """Anything that says which model to run where (EngineOptions, a mode's run config)."""

    model: str
    weights: str | None
    device: str
    precision: str
    views: int


@dataclass(frozen=True)
class EngineOptions:
    """What the user asked for: `--model`, `--weights`, `--device`, `--precision`, `--views`."""

    model: str = "auto"
    weights: str | None = None  # None: the model's installed default weights
    device: str = "auto"
    precision: str = "auto"
    views: int = 1  # views of each frame run and averaged (engine/ensemble.py)


@dataclass
class Engine:
    """A model chosen and loaded for a device: what every job needs before the first frame."""

    runner: ModelRunner
    weights: str
    fallback: str | None
    reason: str
    views: int = 1  # views of each frame the runner's model averages (`--views`)
    warnings: list[str] = field(default_factory=list)  # options that are a bad idea on this hardware

    @property
    def description(self) -> str:
        r = self.runner
        return f"{r.spec.name}{in_views(self.views)} on {describe_device(r.device)} {r.precision}"

    def report_fields(self) -> EngineFields:
        r = self.runner
        return EngineFields(r.spec.name, self.weights, str(r.device), r.precision, self.fallback, self.views)


def with_views(model: nn.Module, spec: ModelSpec, views: int) -> nn.Module:
    """`model` seen through `views` views (`--views`); a recurrent model only as itself,
    since each view would need its own previous output."""
    check_views(views)
    if views == 1:
        return model
    if spec.recurrent:
        raise UsageError(f"--views {views}: {spec.name} is recurrent and runs in one view only")
    return SelfEnsemble(model, views, spec.shift_period)


def has_weights(options: EngineRequest) -> Callable[[ModelSpec], bool]:
    """Which models `--model auto` may pick: those with default weights installed (with an
    explicit --weights, any: the weights say whose they are when loaded)."""
    return lambda spec: options.weights is not None or find_default_weights(spec) is not None


def build_engine(
    options: EngineRequest,
    frame_size: tuple[int, int],
    *,
    untrained: bool = False,
    model: nn.Module | None = None,
) -> Engine:
    """Resolve device, precision and model (auto picks by hardware and installed weights) for
    frames of `frame_size` (W, H; (0, 0) when unknown), and load the weights.

    `untrained`: random initial weights (bench: speed does not depend on them). `model`: a
    model already in hand (training evaluates its own weights), named by `options.model`.
    """
    device = resolve_device(options.device)
    precision = resolve_precision(options.precision, device)
    choice = choose_model(options.model, device, frame_size, precision, has_weights(options), options.views)
    spec = get_spec(choice.name)
    if model is not None:
        weights = IN_TRAINING
    elif untrained:
        model, weights = create_model(spec.name), UNTRAINED
    else:
        path = resolve_weights(spec, options.weights or "default")
        model, weights = load_model(spec.name, path), str(path)
    runner = ModelRunner(with_views(model.for_inference(), spec, options.views), spec, device, precision)
    engine = Engine(runner, weights, choice.fallback, choice.reason, options.views)
    slow = choice.reason == "requested" and unsuitable(spec, device, frame_size, precision, options.views)
    if slow:
        engine.warnings.append(slow)
    return engine
