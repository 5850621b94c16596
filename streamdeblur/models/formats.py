"""Official checkpoint formats: what a model's spec lists as loadable besides our .safetensors.

A format is detected from the path and read into a plain state_dict. Pickles are only ever
read with `weights_only=True`: a file that needs arbitrary objects to unpickle is refused,
never executed. Every failure is a `WeightsError` with one line. The generic pickled
state_dict lives here; a model with a layout of its own (UHDVD's release directory) defines
its format in its module.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from streamdeblur.core.errors import WeightsError, first_line

StateDict = dict[str, torch.Tensor]

PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt")
WRAPPER_KEYS = ("model", "state_dict")
WRAPPER_PREFIXES = ("module.", "model.")


@dataclass(frozen=True)
class CheckpointFormat:
    """A checkpoint layout: its name (recorded by `import-weights`), how to tell and read it."""

    name: str
    help: str  # for error messages: "pass --weights PATH (..., or HELP)"
    matches: Callable[[Path], bool]
    load: Callable[[Path], StateDict]
    files: Callable[[Path], list[Path]] = lambda path: [path]  # what `import-weights` fingerprints


def load_pickle(path: Path) -> object:
    """A pickle read with `weights_only=True` (tensors and containers only)."""
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


def unwrap(obj: object, path: Path) -> StateDict:
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


def load_pickled_state_dict(path: Path) -> StateDict:
    return unwrap(load_pickle(path), path)


PICKLED_STATE_DICT = CheckpointFormat(
    name="state_dict-pickle",
    help="a PyTorch state_dict (.pth, .pt, .pkl, .ckpt)",
    matches=lambda path: path.is_file() and path.suffix in PICKLE_SUFFIXES,
    load=load_pickled_state_dict,
)
