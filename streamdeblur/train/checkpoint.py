"""Training checkpoints: small, in shards, and exact to resume from.

A checkpoint is a folder `step_NNNNNNN/` holding `state.json` (step, settings, history,
evaluations, Adam's step count) and safetensors shards of at most `SHARD_BYTES`, so that every
file fits the transfer limits of the machines runs are moved between. It stores 8 bytes per
parameter instead of 16: the EMA weights in fp16, the live weights as fp16 *offsets from the
EMA* (they differ little, so the offsets keep about 1e-3 of their own size: far finer than
fp16 weights would be), and Adam's two moments in bf16. Buffers (BatchNorm statistics, step
counters) stay exact. Without an EMA the live weights are stored in fp32.

Exact resume: writing a checkpoint is also a synchronisation point. The trainer rounds its
live state to exactly what it wrote (`settle`), so an uninterrupted run and one resumed from
any of its checkpoints compute bit-identical steps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from streamdeblur.core.errors import UsageError
from streamdeblur.models import DeblurModel, create_model
from streamdeblur.models.layers import add_branches, fold_branches

SHARD_BYTES = 15 * 2**20
STATE = "state.json"
PREFIX = "step_"

Tensors = dict[str, torch.Tensor]


def checkpoint_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"{PREFIX}{step:07d}"


def latest(path: Path) -> Path:
    """The checkpoint folder `path` names: itself, or the newest under a run folder."""
    if is_checkpoint(path):
        return path
    found = sorted((path / "checkpoints").glob(f"{PREFIX}*[0-9]")) if (path / "checkpoints").is_dir() else []
    found = [p for p in found if is_checkpoint(p)]
    if not found:
        raise UsageError(f"--resume {path}: no checkpoint there (expected a run folder or {PREFIX}NNNNNNN/)")
    return found[-1]


def pack(model: Tensors, ema: Tensors | None, moments: dict[str, Tensors], params: set[str]) -> Tensors:
    """The compact tensors of a checkpoint (see the module docstring); `params` names the
    trained parameters, everything else in `model` and `ema` (buffers) is kept as it is."""
    out: Tensors = {}
    for name, value in model.items():
        if ema is not None and name in params:
            base = ema[name].half()
            out[f"ema.{name}"] = base
            out[f"delta.{name}"] = (value - base.float()).half()
        else:
            out[f"model.{name}"] = value
    if ema is not None:
        out.update({f"ema.{name}": value for name, value in ema.items() if name not in params})
    for kind, tensors in moments.items():
        out.update({f"{kind}.{name}": value.bfloat16() for name, value in tensors.items()})
    return out


def unpack(tensors: Tensors) -> tuple[Tensors, Tensors | None, dict[str, Tensors]]:
    """Inverse of `pack`: (model, ema or None, moments) in float32 (buffers as stored)."""
    model, ema, moments = {}, {}, {}
    for key, value in tensors.items():
        kind, name = key.split(".", 1)
        if kind == "model":
            model[name] = value
        elif kind == "ema":
            ema[name] = value.float() if value.dtype == torch.float16 else value
        elif kind != "delta":
            moments.setdefault(kind, {})[name] = value.float()
    for key, value in tensors.items():
        kind, name = key.split(".", 1)
        if kind == "delta":
            model[name] = ema[name] + value.float()
    return model, (ema or None), moments


def settle(tensors: Tensors) -> tuple[Tensors, Tensors | None, dict[str, Tensors]]:
    """What a resumed run would load from `pack(...)`: the state to continue from."""
    return unpack({k: v.detach().cpu() for k, v in tensors.items()})


def save(folder: Path, tensors: Tensors, state: dict[str, Any], keep: int) -> Path:
    """Write shards + state.json atomically (temp folder, rename) and keep the newest `keep`."""
    temp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    shard: Tensors = {}
    size = 0
    shards = []
    for key in sorted(tensors):
        value = tensors[key].detach().to("cpu").contiguous()
        nbytes = value.numel() * value.element_size()
        if shard and size + nbytes > SHARD_BYTES:
            shards.append(shard)
            shard, size = {}, 0
        shard[key] = value
        size += nbytes
    shards.append(shard)
    for index, part in enumerate(shards):
        save_file(part, str(temp / f"shard_{index:02d}.safetensors"))
    (temp / STATE).write_text(json.dumps({**state, "shards": len(shards)}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    temp.rename(folder)
    older = sorted(p for p in folder.parent.glob(f"{PREFIX}*[0-9]") if p != folder)
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def discard_after(run: Path, step: int) -> None:
    """Delete the run's checkpoints after `step`. Resuming from an older checkpoint abandons
    them (and the log rows after it); kept, `latest` would go back to them on the next resume."""
    for folder in (run / "checkpoints").glob(f"{PREFIX}*[0-9]"):
        number = folder.name[len(PREFIX) :]
        if number.isdigit() and int(number) > step:
            shutil.rmtree(folder, ignore_errors=True)


def is_checkpoint(path: Path) -> bool:
    return (path / STATE).is_file()


def exported_weights(folder: Path) -> Tensors:
    """The weights a run would export at this checkpoint: its EMA (the live weights where it
    keeps none), branches folded, so any checkpoint can be evaluated (`streamdeblur eval
    --weights FOLDER`)."""
    tensors, state = load(folder)
    model, ema, _ = unpack(tensors)
    weights = ema if ema is not None else model
    config = state["config"]
    if not config.get("branches"):  # already the plain network's tensors
        return weights
    return plain_model(config["model"], weights, branches=True).state_dict()


def plain_model(name: str, weights: Tensors, branches: bool) -> DeblurModel:
    """The model a run's weights make for users (eval mode, on the CPU): a run trained with
    `--branches` holds them beside its convolutions, and they are folded in."""
    model = create_model(name)
    if branches:
        branch(model)
    model.load_state_dict({k: v.cpu() for k, v in weights.items()})
    fold_branches(model)
    return model.eval()


def load(folder: Path) -> tuple[Tensors, dict[str, Any]]:
    """The tensors and state of a checkpoint folder."""
    try:
        state = json.loads((folder / STATE).read_text())
        tensors: Tensors = {}
        for index in range(state["shards"]):
            tensors.update(load_file(str(folder / f"shard_{index:02d}.safetensors")))
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise UsageError(f"checkpoint {folder} is incomplete or damaged ({err})") from None
    return tensors, state


def branch(model: DeblurModel) -> None:
    """Put reparameterisation branches beside the convolutions `model` names (train --branches)."""
    if not model.branched:
        raise UsageError(f"--branches: {type(model).__name__} names no convolutions that take branches")
    add_branches(model, model.branched)
