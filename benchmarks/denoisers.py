"""The denoisers before the model: time per 1280x720 frame, and whether each one helps.

    python benchmarks/denoisers.py [--model msdeblur-s] [--data sharp:../shared/data/train_sharp]

1. Speed: each denoiser (`--denoise NAME`, strength 1) on one 1280x720 frame of the sample
   clip with noise added, on the CPU (2 threads) and on a CUDA GPU where there is one; the
   median of `--runs` runs after one warm-up.
2. Help: `streamdeblur eval` of `--model` (its installed weights) on the held-out split of
   `--data` with the `noisy` blur preset (about 4x the default's sensor noise), with each
   denoiser in front of the model and with none. The USC study timed these denoisers but
   left open whether they help; the PSNR and SSIM gains answer it.
Prints two Markdown tables and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

import av
import numpy as np
import torch

from streamdeblur.engine.device import set_threads
from streamdeblur.pipeline.denoise import DENOISERS

SAMPLE = "samples/blurry.mp4"


def noisy_frame(size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """The sample's first frame at `size` (W, H) with sensor-like noise (sigma 6 levels)."""
    with av.open(SAMPLE) as container:
        frame = next(container.decode(video=0)).reformat(width=size[0], height=size[1], format="rgb24")
    image = frame.to_ndarray().astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).round().astype(np.uint8)


def time_denoisers(device: torch.device, runs: int) -> dict[str, float]:
    image = noisy_frame()
    seconds = {}
    for name, denoise in DENOISERS.items():
        denoise(image, 1.0, device)  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            denoise(image, 1.0, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    return seconds


def evaluate(model: str, data: str, denoise: str) -> dict:
    command = ["streamdeblur", "eval", "--model", model, "--data", data, "--blur", "noisy"]
    command += ["--denoise", denoise, "--device", "cpu", "--json"]
    report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return {"denoise": denoise, "psnr": report["psnr"], "ssim": report["ssim"], "ms_per_frame": report["ms_per_frame"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msdeblur-s")
    parser.add_argument("--data", default="sharp:../shared/data/train_sharp")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    set_threads(2)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    speed = {str(d): time_denoisers(d, args.runs) for d in devices}
    study = {"bilateral": 0.0250, "nlm": 0.8628, "tv": 2.2559}  # s per GoPro frame, i9-12900H (Table 2)
    print("| denoiser | " + " | ".join(f"s per 1280x720 frame ({d})" for d in speed) + " | USC study (i9-12900H) |")
    print("|---|" + "---:|" * (len(speed) + 1))
    for name in DENOISERS:
        print(f"| {name} | " + " | ".join(f"{s[name]:.4f}" for s in speed.values()) + f" | {study[name]:.4f} |")
    rows = [evaluate(args.model, args.data, name) for name in ("none", *DENOISERS)]
    print(f"\n| `--denoise` before {args.model} | PSNR in → out (dB) | gain | SSIM gain | ms per frame |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        p = r["psnr"]
        print(
            f"| {r['denoise']} | {p['input']:.2f} → {p['output']:.2f} | {p['gain']:+.2f} | "
            f"{r['ssim']['gain']:+.4f} | {r['ms_per_frame']:.0f} |"
        )
    print(json.dumps({"speed_s": speed, "eval": rows, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
