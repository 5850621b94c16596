"""Make samples/blurry.mp4: a procedural scene filmed by a shaky camera, with a sound track.

Everything is generated here (no external footage): a textured "world" (checkerboards,
text, rings, a gradient sky, noise), a camera that pans across it, and camera shake rendered
as real motion blur: many sub-frame views along a smooth random trajectory, averaged in
linear light. The clip alternates steady and shaky stretches so `--selective` has both
sharp frames to skip and blurry frames to process. A two-tone AAC track shows that audio is
kept. Deterministic (fixed seed); rerun with `python samples/make_sample.py`.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 480, 272, 25, 3
SUBFRAMES = 24
GAMMA = 2.2


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


def shake_offsets(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame shake amplitude in pixels: steady, shaky, steady, shaky... (smooth ramps)."""
    t = np.arange(frames) / frames
    return 10.0 * np.clip(np.sin(2 * np.pi * 1.5 * t - 0.5) * 1.6, 0, 1)


def render(world: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Frames of a slow pan; each frame is the linear-light average of sub-frame views."""
    linear = (world.astype(np.float32) / 255) ** GAMMA
    amplitude = shake_offsets(frames, rng)
    phases = rng.uniform(0, 2 * np.pi, 4)
    out = []
    for i in range(frames):
        acc = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        for s in range(SUBFRAMES):
            t = (i + s / SUBFRAMES) / FPS
            a = amplitude[i]
            dx = (
                60
                + 90 * t
                + a * np.sin(2 * np.pi * 7 * t + phases[0])
                + 0.6 * a * np.sin(2 * np.pi * 13 * t + phases[1])
            )
            dy = (
                40
                + 20 * t
                + a * np.sin(2 * np.pi * 5 * t + phases[2])
                + 0.6 * a * np.sin(2 * np.pi * 11 * t + phases[3])
            )
            angle = 0.4 * a / 10 * np.sin(2 * np.pi * 3 * t)
            m = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, 1.0)
            m[:, 2] -= (dx, dy)
            acc += cv2.warpAffine(linear, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(np.clip((acc / SUBFRAMES) ** (1 / GAMMA) * 255 + 0.5, 0, 255).astype(np.uint8))
    return out


def write(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.options = {"crf": "20", "preset": "slow"}
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
