"""`streamdeblur import-weights`: official checkpoints converted to our .safetensors.

The source is read by the same loader as `--weights` (format detected, pickles only with
`weights_only=True`) and loaded strictly into the model, so a checkpoint that does not fit
is refused before anything is written. The manifest entry records where the weights came
from: the source's path, format and the SHA-256 of each of its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamdeblur.errors import OutputError, WeightsError
from streamdeblur.models import get_spec
from streamdeblur.weights import (
    UHDVD_RELEASE_FILES,
    load_state_dict,
    load_strict,
    save_weights,
    sha256,
    update_manifest,
)


def source_format(src: Path) -> tuple[str, list[Path]]:
    """The source's format name and the files it consists of."""
    if src.is_dir():
        return "uhdvd-release-dir", [src / name for name in UHDVD_RELEASE_FILES]
    return ("safetensors" if src.suffix == ".safetensors" else "state_dict-pickle"), [src]


def import_weights(src: str | Path, model: str, output: str | Path, half: bool, overwrite: bool) -> dict[str, Any]:
    """Convert `src` for `model` into `output` (.safetensors) and add its manifest entry."""
    spec = get_spec(model)
    src, output = Path(src).expanduser(), Path(output)
    if not src.exists():
        raise WeightsError(f"{src} not found")
    if output.suffix != ".safetensors":
        raise OutputError(f"{output}: the converted weights must be a .safetensors file")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: already exists (use --overwrite to replace it)")
    if not output.parent.is_dir():
        raise OutputError(f"{output}: folder {output.parent} does not exist")
    state = load_state_dict(src, spec)
    net = spec.builder()
    load_strict(net, state, spec, src)
    fmt, files = source_format(src)
    save_weights(net.state_dict(), output, spec, metadata={"origin": "imported", "source": src.name}, half=half)
    entry = {
        "model": spec.name,
        "origin": "imported",
        "precision": "fp16" if half else "fp32",
        "source": {"path": str(src), "format": fmt, "files": {f.name: sha256(f) for f in files}},
        "paper": spec.paper,
    }
    update_manifest(output.parent, output.name, entry)
    return entry
