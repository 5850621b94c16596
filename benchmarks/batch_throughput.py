"""`streamdeblur batch` throughput for several `--jobs` values, on the same tree.

    python benchmarks/batch_throughput.py [--videos 2] [--images 16] [--size 256x144]
        [--frames 24] [--jobs 1 2 4] [--repeats 2] [--model rt-focuser] [--device auto]

The tree is made from the repository's sample clip: VIDEOS copies of its first FRAMES frames
and IMAGES of its frames as PNG (at most 75 of each), all resized to SIZE. Each configuration runs the real
command (a fresh process, `--overwrite`), in turn with the others REPEATS times so that
drift in machine load hits all alike; the table gives the median wall time per
configuration, frames per second, and how many frames shared each model pass (from the
report's `batching`). Speed does not depend on the weights, so random ones are used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2

from streamdeblur.engine.weights import save_weights
from streamdeblur.models import create_model, get_spec

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "blurry.mp4"


def make_tree(root: Path, videos: int, images: int, size: tuple[int, int], frames: int) -> None:
    """Videos and PNG images cut from the sample clip, at `size`."""
    w, h = size
    with av.open(str(SAMPLE)) as source:
        decoded = source.decode(video=0)
        pictures = [next(decoded).to_ndarray(format="rgb24") for _ in range(max(frames, images))]
    pictures = [cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in pictures]
    (root / "clips").mkdir(parents=True)
    (root / "photos").mkdir()
    for n in range(videos):
        with av.open(str(root / "clips" / f"v{n}.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for picture in pictures[:frames]:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            out.mux(stream.encode(None))
    for n in range(images):
        cv2.imwrite(str(root / "photos" / f"p{n:03d}.png"), cv2.cvtColor(pictures[n], cv2.COLOR_RGB2BGR))


def run(tree: Path, out: Path, weights: Path, jobs: int, model: str, device: str) -> dict:
    report = out.with_suffix(".json")
    command = [sys.executable, "-m", "streamdeblur", "batch", str(tree), "-o", str(out), "--overwrite", "-q"]
    command += ["--jobs", str(jobs), "--model", model, "--weights", str(weights), "--device", device]
    subprocess.run([*command, "--report", str(report)], check=True)
    return json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", default="256x144", help="WIDTHxHEIGHT of every input")
    parser.add_argument("--frames", type=int, default=24, help="frames per video (the sample has 75)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="rt-focuser")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root / "in", args.videos, args.images, size, args.frames)
        weights = root / "weights.safetensors"
        save_weights(create_model(args.model).state_dict(), weights, get_spec(args.model))
        seconds: dict[int, list[float]] = {j: [] for j in args.jobs}
        last: dict[int, dict] = {}
        for _ in range(args.repeats):
            for jobs in args.jobs:
                last[jobs] = run(root / "in", root / f"out{jobs}", weights, jobs, args.model, args.device)
                seconds[jobs].append(last[jobs]["seconds"])
    rows = []
    for jobs in args.jobs:
        data, wall = last[jobs], statistics.median(seconds[jobs])
        batching = data["batching"] or {"passes": 0, "frames": 0}
        rows.append(
            {
                "jobs": jobs,
                "seconds": round(wall, 2),
                "fps": round(data["frames_out"] / wall, 2),
                "frames": data["frames_out"],
                "frames_per_pass": round(batching["frames"] / max(batching["passes"], 1), 2),
                "device": data["device"],
            }
        )
    print(f"{args.videos} videos x {args.frames} frames + {args.images} images at {args.size}, {args.model}")
    print("| --jobs | seconds (median) | frames/s | frames per model pass |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['jobs']} | {r['seconds']} | {r['fps']} | {r['frames_per_pass']} |")
    print(json.dumps({"config": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()
