"""Every GPU figure docs/benchmarks.md asks for, from one command on a CUDA machine.

1. `bench` (model alone, CUDA events after warm-up) for uhdvd and rt-focuser at 1280x720,
   1920x1080 and 3840x2160 in fp16, bf16 and fp32;
2. end-to-end file throughput: a generated clip at each size through `streamdeblur` (decode,
   gate, model, encode threads), fps from the run report.

Prints a markdown table per part and writes every measurement as a JSON line to --out.
Usage: python benchmarks/gpu_suite.py --out gpu.jsonl [--frames 60]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamdeblur.bench import run_bench
from streamdeblur.engine.weights import save_weights
from streamdeblur.models import create_model, get_spec

MODELS = ("uhdvd", "rt-focuser")
SIZES = ((1280, 720), (1920, 1080), (3840, 2160))
PRECISIONS = ("fp16", "bf16", "fp32")


def row(*cells: object) -> None:
    """Print one markdown table row."""
    print("| " + " | ".join(str(c) for c in cells) + " |")


def make_clip(path: Path, size: tuple[int, int], frames: int) -> None:
    """A moving textured clip (content does not change the speed of the models)."""
    w, h = size
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "20"}
        for i in range(frames):
            rgb = np.ascontiguousarray(base[i % 8 : i % 8 + h, :w])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")))
        container.mux(stream.encode(None))


def end_to_end(model: str, clip: Path, precision: str, device: str) -> dict:
    """The whole tool on a file; random-init weights, since speed does not depend on them."""
    with tempfile.TemporaryDirectory() as tmp:
        report, weights = Path(tmp) / "r.json", Path(tmp) / "w.safetensors"
        save_weights(create_model(model).state_dict(), weights, get_spec(model))
        cmd = [
            sys.executable,
            "-m",
            "streamdeblur",
            str(clip),
            "-o",
            str(Path(tmp) / "out.mp4"),
            "--model",
            model,
            "--device",
            device,
            "--precision",
            precision,
            "--report",
            str(report),
            "--weights",
            str(weights),
            "-q",
        ]
        subprocess.run(cmd, check=True)
        data = json.loads(report.read_text())
    return {
        "model": model,
        "precision": precision,
        "clip": clip.name,
        "fps": data["fps"],
        "stages_mean_ms": {k: v["mean_ms"] for k, v in data["stages"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=60, help="frames per end-to-end clip")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--device", default="cuda", help="cpu only to smoke-test this script")
    parser.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    e2e_precision = args.precisions[0]
    with args.out.open("w") as out:
        row("model", "size", "precision", "latency ms", "fps", "TFLOP/s")
        row("---", "---", "---", "---:", "---:", "---:")
        for model in MODELS:
            for w, h in sizes:
                for precision in args.precisions:
                    r = run_bench(model, (w, h), args.device, precision, runs=args.runs, warmup=5)
                    out.write(json.dumps({"part": "bench", **r}) + "\n")
                    row(model, f"{w}x{h}", precision, f"{r['latency_ms']:.1f}", f"{r['fps']:.1f}", f"{r['tflops']:.1f}")
        with tempfile.TemporaryDirectory() as tmp:
            print()
            row("model", "clip", "precision", "file fps", "model ms", "decode ms", "encode ms")
            row("---", "---", "---", "---:", "---:", "---:", "---:")
            for w, h in sizes:
                clip = Path(tmp) / f"clip_{w}x{h}.mp4"
                make_clip(clip, (w, h), args.frames)
                for model in MODELS:
                    r = end_to_end(model, clip, e2e_precision, args.device)
                    out.write(json.dumps({"part": "end_to_end", **r}) + "\n")
                    s = r["stages_mean_ms"]
                    cells = (f"{r['fps']:.1f}", f"{s['model']:.1f}", f"{s['decode']:.1f}", f"{s['encode']:.1f}")
                    row(model, f"{w}x{h}", e2e_precision, *cells)


if __name__ == "__main__":
    main()
