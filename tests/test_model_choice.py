"""`--model auto` and where model knowledge lives: only in `streamdeblur/models/`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from streamdeblur.core.errors import WeightsError
from streamdeblur.engine.build import build_engine
from streamdeblur.engine.choice import CPU_MACS_PER_FRAME, ModelChoice, choose_model
from streamdeblur.models import get_spec, list_models
from streamdeblur.pipeline.config import RunConfig

PACKAGE = Path(__file__).resolve().parents[1] / "streamdeblur"
CPU = torch.device("cpu")


def choose(installed: set[str], size: tuple[int, int] = (640, 360), views: int = 1) -> ModelChoice:
    return choose_model("auto", CPU, size, "fp32", lambda spec: spec.name in installed, views)


def test_auto_never_picks_a_model_without_weights() -> None:
    ranked = sorted((s for s in list_models() if s.auto_rank), key=lambda s: -s.auto_rank)
    for spec in ranked:
        assert choose({spec.name}).name == spec.name  # the only one installed: chosen, however slow
    with pytest.raises(WeightsError, match="no model has weights installed"):
        choose(set())


def test_auto_on_a_cpu_passes_over_models_too_slow_for_the_frame_and_says_why() -> None:
    everything = {s.name for s in list_models()}
    choice = choose(everything)
    spec = get_spec(choice.name)
    assert spec.macs_per_pixel * 640 * 360 <= CPU_MACS_PER_FRAME
    faster_not_better = [s for s in list_models() if s.auto_rank > spec.auto_rank]
    assert faster_not_better and all(s.name in choice.fallback for s in faster_not_better)
    # nothing fits a huge frame: the lightest installed model runs, and the report says so
    huge = choose(everything, (16384, 16384))
    lightest = min((s for s in list_models() if s.auto_rank), key=lambda s: s.macs_per_pixel)
    assert huge.name == lightest.name and "too slow" in huge.fallback


def test_auto_on_a_cpu_counts_every_view_of_a_frame() -> None:
    everything = {s.name for s in list_models()}
    one = get_spec(choose(everything).name)
    assert one.macs_per_pixel * 640 * 360 * 8 > CPU_MACS_PER_FRAME  # fits in one view, not in eight
    eight = choose(everything, views=8)
    assert get_spec(eight.name).macs_per_pixel < one.macs_per_pixel
    assert f"{one.name} needs" in eight.fallback and "frame in 8 views, too slow" in eight.fallback


def test_a_named_model_without_weights_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    unweighted = next(s for s in list_models() if s.auto_rank)
    monkeypatch.setattr("streamdeblur.engine.weights.search_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsError, match=f"no default weights for {unweighted.name}.*pass --weights PATH"):
        build_engine(RunConfig(model=unweighted.name, device="cpu"), (32, 32))


def test_no_model_is_named_outside_models() -> None:
    """Adding a model needs no edit outside models/: no module elsewhere names one."""
    names = [s.name for s in list_models()]
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if "models" not in path.relative_to(PACKAGE).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "\n".join(offenders)
