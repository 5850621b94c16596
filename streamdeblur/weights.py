"""Weights: finding, loading (ours and official formats), saving, and the manifest.

Formats read, detected from the path:
- our `.safetensors`, whose metadata records the model it belongs to;
- the UHDVD release directory of eight `{encoder,decoder}_lv{1..4}.pkl` (legacy pickles of
  plain state_dicts; each file's keys get its stem as prefix, e.g. `encoder_lv1.`);
- a `.pth` / `.pt` / `.pkl` / `.ckpt` state_dict, possibly wrapped in {"model": ...} or
  {"state_dict": ...} and prefixed `module.` / `model.` (DataParallel, wrappers).
Pickles are only ever read with `weights_only=True`: a file that needs arbitrary objects to
unpickle is refused, never executed. Every failure is a `WeightsError` with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from streamdeblur.errors import WeightsError, first_line
from streamdeblur.io.files import atomic_write_text, partial_path
from streamdeblur.models.registry import ModelSpec, list_models

WEIGHTS_ENV = "STREAMDEBLUR_WEIGHTS"
MANIFEST = "manifest.json"
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt")
UHDVD_RELEASE_FILES = tuple(f"{part}_lv{k}.pkl" for part in ("encoder", "decoder") for k in range(1, 5))
WRAPPER_KEYS = ("model", "state_dict")
WRAPPER_PREFIXES = ("module.", "model.")

FORMAT_HELP = {
    "uhdvd-release-dir": "the UHDVD release directory of eight {encoder,decoder}_lv{1..4}.pkl",
    "rt-focuser-pth": "an RT-Focuser .pth",
}

StateDict = dict[str, torch.Tensor]


def search_dirs() -> list[Path]:
    """Where default weights are looked for, in order."""
    env = [Path(os.environ[WEIGHTS_ENV])] if os.environ.get(WEIGHTS_ENV) else []
    repo = Path(__file__).resolve().parents[1] / "weights"
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
        kinds = ", or ".join(["a streamdeblur .safetensors", *(FORMAT_HELP.get(f, f) for f in spec.official_formats)])
        looked = ", ".join(str(d) for d in search_dirs())
        raise WeightsError(
            f"no default weights for {spec.name} yet (looked for {spec.weights_file} in {looked}); "
            f"pass --weights PATH ({kinds})"
        )
    path = Path(weights).expanduser()
    if not path.exists():
        raise WeightsError(f"weights {path} not found")
    return path


def load_state_dict(path: str | Path, spec: ModelSpec) -> StateDict:
    """Read the tensors in `path` (any supported format) as a float32 state_dict for `spec`."""
    path = Path(path)
    if path.is_dir():
        state = _load_release_dir(path)
    elif path.suffix == ".safetensors":
        state = _load_safetensors(path, spec)
    elif path.suffix in PICKLE_SUFFIXES:
        if path.name in UHDVD_RELEASE_FILES:
            raise WeightsError(f"{path} is one file of the UHDVD release; pass its directory {path.parent}")
        state = _unwrap(_load_pickle(path), path)
    else:
        raise WeightsError(
            f"weights {path}: unknown format (expected .safetensors, "
            f"{'/'.join(PICKLE_SUFFIXES)} or the UHDVD release directory)"
        )
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _load_safetensors(path: Path, spec: ModelSpec) -> StateDict:
    try:
        with safe_open(path, framework="pt") as f:
            owner = (f.metadata() or {}).get("model")
            if owner is not None and owner != spec.name:
                raise WeightsError(f"weights {path} are for {owner}, not {spec.name}")
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118  (not a dict)
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"weights {path} are unreadable: {first_line(err)}") from None


def _load_pickle(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many kinds for bad or unsafe pickles)
        if "GLOBAL" in str(err):  # the restricted unpickler met a class or function
            raise WeightsError(
                f"refusing {path}: it holds objects other than tensors (only plain "
                "state_dicts are loaded, with weights_only=True)"
            ) from None
        damaged = isinstance(err, pickle.UnpicklingError)
        reason = "not a PyTorch checkpoint, or damaged" if damaged else first_line(err)
        raise WeightsError(f"weights {path} are unreadable: {reason}") from None


def _load_release_dir(path: Path) -> StateDict:
    missing = [name for name in UHDVD_RELEASE_FILES if not (path / name).is_file()]
    if len(missing) == len(UHDVD_RELEASE_FILES):
        raise WeightsError(
            f"{path} is a directory but not a UHDVD release (no {{encoder,decoder}}_lv{{1..4}}.pkl in it)"
        )
    if missing:
        raise WeightsError(f"{path} is not a complete UHDVD release directory: missing {', '.join(missing)}")
    state: StateDict = {}
    for name in UHDVD_RELEASE_FILES:
        prefix = name.removesuffix(".pkl") + "."
        part = _unwrap(_load_pickle(path / name), path / name)
        state.update({prefix + key: value for key, value in part.items()})
    return state


def _unwrap(obj: object, path: Path) -> StateDict:
    """The state_dict inside a checkpoint: unwrap {"model"|"state_dict": sd}, strip prefixes."""
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights {path} do not hold a state_dict (a mapping of names to tensors)")
    state = {}
    for key, value in obj.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        state[key] = value
    return state


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
    temp = partial_path(path)  # an existing weights file is replaced only by a complete one
    save_file(tensors, str(temp), metadata=meta)
    temp.replace(path)
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
