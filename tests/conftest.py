"""Shared test fixtures: where ../shared lives, and skipping cleanly when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMDEBLUR_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test when it is not there (users' machines)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared reference material is absent)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _small_torch():
    """Tests run on a 2-core CI machine: keep torch from oversubscribing it."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def rt_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-init RT-Focuser weights: the plumbing does not care what the model learned."""
    from streamdeblur.engine.weights import save_weights
    from streamdeblur.models import create_model, get_spec

    path = tmp_path_factory.mktemp("weights") / "rt.safetensors"
    save_weights(create_model("rt-focuser").state_dict(), path, get_spec("rt-focuser"))
    return path
