"""Every model on the same footing, in one run: held-out PSNR gain and CPU speed.

    python benchmarks/compare_models.py [--data sharp:../shared/data/train_sharp] [--record]

For each registered model: `streamdeblur bench` on the CPU at 640x360, fp32, 2 threads;
and, where default weights are installed, `streamdeblur eval` on the held-out split of
`--data` with the `default` and the `mild` blur (the same seeds for every model). Prints a
Markdown table (the README's) and one JSON line. `--record` writes the figures, with the
commands that produced them, into the weights' manifest entries, where `streamdeblur
models` shows them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from streamdeblur.bench import run_bench
from streamdeblur.engine.weights import find_default_weights, read_manifest, update_manifest
from streamdeblur.models import create_model, get_spec, list_models

DATA = "sharp:../shared/data/train_sharp"


def evaluate(name: str, data: str, blur: str) -> dict:
    """`streamdeblur eval --json` in a fresh process, with the command that ran it."""
    command = ["streamdeblur", "eval", "--model", name, "--data", data, "--blur", blur, "--device", "cpu", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    return {
        "data": data,
        "split": "test",
        "blur": blur,
        "frames": report["frames"],
        "psnr": report["psnr"],
        "ssim": report["ssim"],
        "sharpness": report["sharpness"],
        "command": shlex.join(command[:-1]),
    }


def measure(name: str, data: str, runs: int) -> dict:
    speed = run_bench(name, (640, 360), device="cpu", precision="fp32", runs=runs, warmup=1, threads=2)
    row = {
        "model": name,
        "params": sum(p.numel() for p in create_model(name).parameters()),
        "macs_per_pixel": speed["gmacs"] * 1e9 / (640 * 360),
        "cpu_ms_640x360": speed["latency_ms"],
        "cpu_fps_640x360": speed["fps"],
        "weights": None,
    }
    path = find_default_weights(get_spec(name))
    if path is not None:
        row["weights"] = str(path)
        row["eval"] = evaluate(name, data, "default")
        row["eval_mild"] = evaluate(name, data, "mild")
    return row


def record(row: dict) -> None:
    """Add the figures to the weights' manifest entry (keeping what training wrote)."""
    path = Path(row["weights"])
    entry = read_manifest(path.parent).get(path.name, {})
    entry.update({k: row[k] for k in ("eval", "eval_mild", "cpu_fps_640x360")})
    entry["cpu_bench"] = "python benchmarks/compare_models.py (bench at 640x360, cpu, fp32, 2 threads)"
    update_manifest(path.parent, path.name, entry)


def gain(row: dict, key: str) -> str:
    return f"{row[key]['psnr']['gain']:+.2f}" if key in row else "no weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA, help="evaluation data (its held-out split)")
    parser.add_argument("--models", nargs="+", default=[s.name for s in list_models()])
    parser.add_argument("--runs", type=int, default=5, help="timed bench runs per model")
    parser.add_argument("--record", action="store_true", help="write the figures into the weights' manifest")
    args = parser.parse_args()
    rows = [measure(name, args.data, args.runs) for name in args.models]
    print("| model | params | MACs/pixel | CPU fps 640x360 | PSNR gain `default` (dB) | PSNR gain `mild` (dB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| `{r['model']}` | {r['params'] / 1e6:.2f} M | {r['macs_per_pixel'] / 1e3:.1f} k | "
            f"{r['cpu_fps_640x360']:.2f} | {gain(r, 'eval')} | {gain(r, 'eval_mild')} |"
        )
        if args.record and r["weights"]:
            record(r)
    print(json.dumps({"torch": torch.__version__, "python": sys.version.split()[0], "rows": rows}))


if __name__ == "__main__":
    main()
