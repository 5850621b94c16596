"""`streamdeblur import-weights`: official checkpoints converted to our .safetensors.

The source is read by the same loader as `--weights` (format detected, pickles only with
`weights_only=True`) and loaded strictly into the model, so a checkpoint that does not fit
is refused before anything is written. The manifest entry records where the weights came
from: the source's path, format and the SHA-256 of each of its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamdeblur.errors import OutputError
from streamdeblur.io.sinks import check_target
from streamdeblur.models import create_model, get_spec
from streamdeblur.weights import UHDVD_RELEASE_FILES, save_weights, sha256, update_manifest


def source_format(src: Path) -> tuple[str, list[Path]]:
    """The source's format name and the files it consists of."""
    if src.is_dir():
        return "uhdvd-release-dir", [src / name for name in UHDVD_RELEASE_FILES]
    return ("safetensors" if src.suffix == ".safetensors" else "state_dict-pickle"), [src]


def import_weights(src: str | Path, model: str, output: str | Path, half: bool, overwrite: bool) -> dict[str, Any]:
    """Convert `src` for `model` into `output` (.safetensors) and add its manifest entry."""
    spec = get_spec(model)
    src, output = Path(src).expanduser(), Path(output)
    if output.suffix != ".safetensors":
        raise OutputError(f"{output}: the converted weights must be a .safetensors file")
    check_target(output, overwrite)
    net = create_model(spec.name, weights=src)  # strict: a checkpoint for another model is refused
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
