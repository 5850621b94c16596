"""`streamdeblur import-weights`: official checkpoints converted to our .safetensors.

The source is read by the same loader as `--weights` (format detected, pickles only with
`weights_only=True`) and loaded strictly into the model, so a checkpoint that does not fit
is refused before anything is written. The manifest entry records where the weights came
from: the source's path, format and the SHA-256 of each of its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamdeblur.core.errors import OutputError
from streamdeblur.engine.weights import checkpoint_format, load_model, save_weights, sha256, update_manifest
from streamdeblur.io.sinks import check_target
from streamdeblur.models import get_spec


def import_weights(src: str | Path, model: str, output: str | Path, half: bool, overwrite: bool) -> dict[str, Any]:
    """Convert `src` for `model` into `output` (.safetensors) and add its manifest entry."""
    spec = get_spec(model)
    src, output = Path(src).expanduser(), Path(output)
    if output.suffix != ".safetensors":
        raise OutputError(f"{output}: the converted weights must be a .safetensors file")
    check_target(output, overwrite)
    net = load_model(spec.name, src)  # strict: a checkpoint for another model is refused
    fmt = checkpoint_format(src, spec)
    fmt_name, files = ("safetensors", [src]) if fmt is None else (fmt.name, fmt.files(src))
    save_weights(net.state_dict(), output, spec, metadata={"origin": "imported", "source": src.name}, half=half)
    entry = {
        "model": spec.name,
        "origin": "imported",
        "precision": "fp16" if half else "fp32",
        "source": {"path": str(src), "format": fmt_name, "files": {f.name: sha256(f) for f in files}},
        "paper": spec.paper,
    }
    update_manifest(output.parent, output.name, entry)
    return entry
