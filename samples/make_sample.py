"""Make samples/blurry.mp4: a procedural scene filmed by a shaky camera, with a sound track.

Everything is generated here (no external footage): a textured "world" (checkerboards,
text, rings, a gradient sky, noise), a camera that pans across it, and camera shake rendered
as real motion blur by the training toolchain's own renderer (streamdeblur/train/synth.py):
many sub-frame views along a smooth trajectory, averaged in linear light. The clip
alternates steady and shaky stretches so `--selective` has both sharp frames to skip and
blurry frames to process. A two-tone AAC track shows that audio is
kept. Deterministic (fixed seed); rerun with `python samples/make_sample.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from streamdeblur.train import synth

WIDTH, HEIGHT, FPS, SECONDS = 480, 272, 25, 3
SHAKE_PX = 10.0


def make_world(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A large RGB canvas with detail at many scales and orientations."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([0.35 + 0.3 * y / height, 0.55 + 0.2 * y / height, 0.85 - 0.1 * y / height], axis=-1)
    world = (sky * 255).astype(np.uint8)
    for _ in range(14):  # checkerboards of random cell size
        cx, cy = rng.integers(0, width - 200), rng.integers(0, height - 160)
        cell = int(rng.integers(6, 24))
        w, h = int(rng.integers(100, 220)), int(rng.integers(80, 160))
        yy, xx = np.mgrid[0:h, 0:w]
        board = ((yy // cell + xx // cell) % 2).astype(np.uint8)
        colour = rng.integers(0, 255, 3)
        world[cy : cy + h, cx : cx + w] = np.where(board[..., None] == 1, colour, 255 - colour)
    for _ in range(30):  # rings
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        for r in range(int(rng.integers(10, 30)), int(rng.integers(40, 90)), 7):
            cv2.circle(world, centre, r, tuple(int(c) for c in rng.integers(0, 255, 3)), 2, cv2.LINE_AA)
    words = ["STREAMDEBLUR", "sharp?", "4K", "RTSP", "focus", "shake", "UHDVD", "detail"]
    for _ in range(40):  # text at several sizes
        org = (int(rng.integers(0, width - 200)), int(rng.integers(30, height)))
        scale = float(rng.uniform(0.6, 2.2))
        cv2.putText(
            world,
            str(rng.choice(words)),
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            tuple(int(c) for c in rng.integers(0, 255, 3)),
            int(rng.integers(1, 4)),
            cv2.LINE_AA,
        )
    noise = rng.normal(0, 6, world.shape)
    return np.clip(world + noise, 0, 255).astype(np.uint8)


def shake_envelope(frames: int) -> np.ndarray:
    """Per-frame shake gain in [0, 1]: steady, shaky, steady, shaky... (smooth ramps)."""
    t = np.arange(frames) / frames
    return np.clip(np.sin(2 * np.pi * 1.5 * t - 0.5) * 1.6, 0, 1)


def camera_path(frames: int, rng: np.random.Generator) -> synth.CameraPath:
    """A slow pan across the world with hand shake of up to 10 px and 0.4 degrees.

    Time is in frame intervals: x shakes at 7 and 13 Hz, y at 5 and 11 Hz, the roll at 3 Hz.
    The camera starts looking at world point (300, 176) (the world is 1400 x 800).
    """
    phase = rng.uniform(0, 2 * np.pi, 4)
    hz = lambda *f: [x / FPS for x in f]  # noqa: E731
    amp = [[SHAKE_PX, SHAKE_PX, np.radians(0.4)], [0.6 * SHAKE_PX, 0.6 * SHAKE_PX, 0.0], [0.0, 0.0, 0.0]]
    freq = [hz(7, 5, 3), hz(13, 11, 0), hz(0, 0, 0)]
    phases = [[phase[0], phase[2], 0.0], [phase[1], phase[3], 0.0], [0.0, 0.0, 0.0]]
    tensor = lambda x: torch.tensor(x, dtype=torch.float32)[None]  # noqa: E731
    return synth.CameraPath(
        pan=tensor([90 / FPS, 20 / FPS]),
        offset=tensor([300 - 700, 176 - 400]),
        shake_amp=tensor(amp),
        shake_freq=tensor(freq),
        shake_phase=tensor(phases),
        spin=torch.zeros(1),
        zoom=torch.zeros(1),
        envelope=tensor(shake_envelope(frames)),
    )


def render(world: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The clip: streamdeblur's synthetic motion blur (linear-light average of sub-frame
    views along the camera path, shutter open the whole frame interval), without noise."""
    config = dataclasses.replace(synth.STATIC, exposure=(1.0, 1.0))
    source = torch.from_numpy(world).permute(2, 0, 1)[None].float() / 255
    g = torch.Generator().manual_seed(0)
    blurry, _ = synth.synthesize(source, config, frames, (HEIGHT, WIDTH), g, path=camera_path(frames, rng))
    return list((blurry[0] * 255).round().byte().permute(0, 2, 3, 1).numpy())


def write(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.options = {"crf": "20", "preset": "slow", "threads": "1"}  # threads: same bytes each run
        video.codec_context.colorspace = video.codec_context.color_primaries = video.codec_context.color_trc = 6
        video.codec_context.color_range = 1
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p", dst_colorspace="itu601")
            container.mux(video.encode(vf))
        container.mux(video.encode(None))
        t = np.arange(48000 * SECONDS) / 48000
        tone = 0.2 * np.sin(2 * np.pi * np.where(t % 1 < 0.5, 440, 660) * t).astype(np.float32)
        for start in range(0, tone.size, 1024):
            chunk = tone[start : start + 1024][None, :]
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
            container.mux(audio.encode(af))
        container.mux(audio.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("blurry.mp4"))
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    world = make_world(1400, 800, rng)
    write(args.output, render(world, FPS * SECONDS, rng))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
