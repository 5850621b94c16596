"""Weights: finding, loading (ours and the official formats a model's spec lists), saving,
and the manifest.

Our `.safetensors` records in its metadata the model it belongs to. Any other path is read
by the first of the spec's `formats` that recognises it (models/formats.py), else as a
pickled state_dict (.pth/.pt/.pkl/.ckpt, possibly wrapped and prefixed). Every failure is
a `WeightsError` with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from streamdeblur.core.errors import WeightsError, first_line
from streamdeblur.core.files import atomic_write, atomic_write_text
from streamdeblur.models.formats import PICKLE_SUFFIXES, PICKLED_STATE_DICT, CheckpointFormat, StateDict
from streamdeblur.models.registry import DeblurModel, ModelSpec, get_spec, list_models

WEIGHTS_ENV = "STREAMDEBLUR_WEIGHTS"
MANIFEST = "manifest.json"


def search_dirs() -> list[Path]:
    """Where default weights are looked for, in order."""
    env = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
    repo = Path(__file__).resolve().parents[2] / "weights"  # a source checkout: <repo>/streamdeblur/engine
    return [*env, repo, Path(sys.prefix) / "share" / "streamdeblur" / "weights"]


def find_default_weights(spec: ModelSpec) -> Path | None:
    """The first `spec.weights_file` in `search_dirs()`, or None."""
    return next((d / spec.weights_file for d in search_dirs() if (d / spec.weights_file).is_file()), None)


def resolve_weights(spec: ModelSpec, weights: str | Path) -> Path:
    """The weights path for `spec`: "default" searches `search_dirs()`, anything else is a path."""
    if str(weights) == "default":
        found = find_default_weights(spec)
        if found:
            return found
        kinds = ", or ".join(["a streamdeblur .safetensors", *(f.help for f in spec.formats)])
        looked = ", ".join(str(d) for d in search_dirs())
        raise WeightsError(
            f"no default weights for {spec.name} yet (looked for {spec.weights_file} in {looked}); "
            f"pass --weights PATH ({kinds})"
        )
    path = Path(weights).expanduser()
    if not path.exists():
        raise WeightsError(f"weights {path} not found")
    return path


def load_model(name: str, weights: str | Path) -> DeblurModel:
    """Model `name` with `weights` ("default" or a path) loaded strictly: a checkpoint for
    another model is a clear error."""
    spec = get_spec(name)
    model = spec.builder()
    path = resolve_weights(spec, weights)
    load_strict(model, load_state_dict(path, spec), spec, path)
    return model


def load_grown(name: str, weights: str | Path) -> DeblurModel:
    """Model `name` started from `weights`: its own, or those of a smaller model its spec
    grows from (`ModelSpec.grow`: the same function in the larger network), for `train --init`."""
    spec = get_spec(name)
    path = resolve_weights(spec, weights)
    owner = safetensors_owner(path)
    if owner is None or owner == name or owner not in spec.grows_from or spec.grow is None:
        return load_model(name, path)
    model = spec.builder()
    model.load_state_dict(spec.grow(model, load_state_dict(path, get_spec(owner))), strict=True)
    return model


def safetensors_owner(path: Path) -> str | None:
    """The model our .safetensors at `path` records as its owner (None: another format, or none)."""
    if path.suffix != ".safetensors":
        return None
    with _open_safetensors(path) as f:
        return _owner(f)


@contextmanager
def _open_safetensors(path: Path) -> Iterator[Any]:
    """`safe_open(path)`, any failure reading it a one-line `WeightsError`."""
    try:
        with safe_open(path, framework="pt") as f:
            yield f
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"weights {path} are unreadable: {first_line(err)}") from None


def _owner(f: Any) -> str | None:
    return (f.metadata() or {}).get("model")


def checkpoint_format(path: Path, spec: ModelSpec) -> CheckpointFormat | None:
    """The format `path` is read with for `spec` (None: our .safetensors).

    Another model's format is read too, so that `load_strict` can say whose weights they are.
    """
    if path.suffix == ".safetensors":
        return None
    others = [f for other in list_models() if other is not spec for f in other.formats]
    for fmt in (*spec.formats, PICKLED_STATE_DICT, *others):
        if fmt.matches(path):
            return fmt
    readable = ", ".join([".safetensors", *PICKLE_SUFFIXES, *(f.help for f in spec.formats)])
    raise WeightsError(f"weights {path}: not a format {spec.name} weights come in ({readable})")


def load_state_dict(path: str | Path, spec: ModelSpec) -> StateDict:
    """Read the tensors in `path` (any supported format) as a float32 state_dict for `spec`."""
    path = Path(path)
    fmt = checkpoint_format(path, spec)
    state = _load_safetensors(path, spec) if fmt is None else fmt.load(path)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _load_safetensors(path: Path, spec: ModelSpec) -> StateDict:
    with _open_safetensors(path) as f:
        owner = _owner(f)
        if owner is not None and owner != spec.name:
            raise WeightsError(f"weights {path} are for {owner}, not {spec.name}")
        return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118  (not a dict)


def load_strict(model: torch.nn.Module, state: StateDict, spec: ModelSpec, path: str | Path) -> None:
    """Load `state` into `model` strictly, explaining a mismatch in one line."""
    own = model.state_dict()
    if state.keys() != own.keys():
        for other in list_models():
            if other.name != spec.name and state.keys() == _state_keys(other):
                raise WeightsError(f"weights {path} are for {other.name}, not {spec.name}")
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        raise WeightsError(
            f"weights {path} do not fit {spec.name}: {len(missing)} missing"
            f"{_some(missing)}, {len(unexpected)} unexpected{_some(unexpected)}"
        )
    wrong = [f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})" for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        raise WeightsError(f"weights {path} do not fit {spec.name}: {len(wrong)} shape mismatches{_some(wrong)}")
    model.load_state_dict(state, strict=True)


def _state_keys(spec: ModelSpec) -> set[str]:
    """The state_dict keys of `spec`'s model, built without allocating memory."""
    with torch.device("meta"):
        return set(spec.builder().state_dict())


def _some(items: list[str], n: int = 3) -> str:
    return f" ({', '.join(items[:n])}{', ...' if len(items) > n else ''})" if items else ""


def save_weights(
    state_dict: StateDict, path: str | Path, spec: ModelSpec, metadata: dict[str, str] | None = None, half: bool = False
) -> Path:
    """Write our .safetensors: the tensors (fp16 when `half`) and {"format", "model", ...}."""
    path = Path(path)
    tensors = {}
    for key, value in state_dict.items():
        value = value.detach().to("cpu")
        tensors[key] = (value.half() if half and value.is_floating_point() else value).contiguous().clone()
    meta = {**(metadata or {}), "format": "streamdeblur", "model": spec.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    # an existing weights file is replaced only by a complete one, with the umask's mode
    # (safetensors itself creates files 0600)
    atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=meta))
    return path


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: str | Path) -> dict[str, dict]:
    """`folder/manifest.json`: {file name: {"model", "sha256", recipe and eval fields}}."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path} is unreadable: {first_line(err)}") from None
    if not isinstance(manifest, dict):
        raise WeightsError(f"{path} is not a mapping of weights files to entries")
    return manifest


def update_manifest(folder: str | Path, filename: str, entry: dict) -> dict[str, dict]:
    """Set the manifest entry of `filename` (its sha256 computed here) and rewrite the file."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    manifest[filename] = {**entry, "sha256": sha256(folder / filename)}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
