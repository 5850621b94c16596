"""Fabricate small test clips with real FFmpeg (PyAV): textures, blur, audio, odd rates,
rotation; and images with an EXIF orientation (OpenCV)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import cv2
import numpy as np


def texture(width: int, height: int, shift: int = 0, seed: int = 0) -> np.ndarray:
    """A detailed RGB test picture (checkers, lines, noise) that shifts with `shift`."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    checks = (((x + shift) // 6 + y // 6) % 2) * 160 + 40
    img = np.stack([checks, (x * 255 // max(width - 1, 1)), 255 - checks], axis=-1).astype(np.float32)
    img += rng.normal(0, 8, img.shape)
    for k in range(0, width, 11):
        cv2.line(img, ((k + shift) % width, 0), ((k * 3 + shift) % width, height - 1), (250, 250, 30), 1)
    return np.clip(img, 0, 255).astype(np.uint8)


def motion_blur(image: np.ndarray, length: int) -> np.ndarray:
    """Horizontal box motion blur of `length` pixels."""
    if length <= 1:
        return image
    kernel = np.full((1, length), 1.0 / length, np.float32)
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def clip_frames(n: int, width: int, height: int, blur_from: int | None = None, blur: int = 9) -> list[np.ndarray]:
    """`n` frames of a panning texture; frames from `blur_from` on are motion-blurred."""
    frames = []
    for i in range(n):
        frame = texture(width, height, shift=2 * i)
        if blur_from is not None and i >= blur_from:
            frame = motion_blur(frame, blur)
        frames.append(frame)
    return frames


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    rate: Fraction | int = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    pix_fmt: str = "yuv420p",
    audio_seconds: float | None = None,
    colour: tuple[int, int] | None = None,
    codec: str = "libx264",
    faststart: bool = False,
    rotation: float | None = None,
    audio_codec: str = "aac",
) -> Path:
    """Encode RGB `frames` (uint8, or uint16 for 10-bit `pix_fmt`); optional explicit pts (VFR),
    a sine track (AAC unless `audio_codec` says otherwise), and colour tags (matrix, range) used
    for the RGB→YUV conversion too. `faststart` puts the MP4 index first, as streaming-friendly
    files have it; `rotation` (degrees, counter-clockwise) stores a display matrix, as phones do."""
    rate = Fraction(rate)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else None) as container:
        stream = container.add_stream(codec, rate=rate)
        h, w = frames[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        tb = time_base or 1 / rate
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.codec_context.options = {"crf": "12"} if codec == "libx264" else {}
        kwargs = {}
        if colour:
            stream.codec_context.colorspace, stream.codec_context.color_range = colour
            kwargs = {
                "dst_colorspace": {1: "ITU709", 5: "ITU601", 6: "ITU601"}[colour[0]],
                "dst_color_range": {1: "MPEG", 2: "JPEG"}[colour[1]],
            }
        audio = None
        if audio_seconds:
            audio = container.add_stream(audio_codec, rate=48000)
            audio.layout = "mono"
        for i, rgb in enumerate(frames):
            fmt = "rgb24" if rgb.dtype == np.uint8 else "rgb48le"
            vf = av.VideoFrame.from_ndarray(rgb, format=fmt).reformat(format=pix_fmt, **kwargs)
            vf.pts = pts[i] if pts is not None else i
            vf.time_base = tb
            container.mux(stream.encode(vf))
        container.mux(stream.encode(None))
        if audio is not None:
            samples = int(48000 * audio_seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                container.mux(audio.encode(af))
            container.mux(audio.encode(None))
    return path


def probe(path: Path) -> dict:
    """What a test checks about a video: frames with times, rate, size, streams, colour, audio length."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = []
        pix_fmt = None
        for frame in container.decode(video):
            times.append(frame.time)
            pix_fmt = frame.format.name
        info = {
            "frames": len(times),
            "times": times,
            "rate": video.average_rate,
            "size": (video.codec_context.width, video.codec_context.height),
            "pix_fmt": pix_fmt,
            "colorspace": video.codec_context.colorspace,
            "color_range": video.codec_context.color_range,
            "streams": [s.type for s in container.streams],
            "metadata": dict(video.metadata),
        }
    with av.open(str(path)) as container:
        audio = container.streams.audio
        info["audio_seconds"] = None
        if audio:
            samples = sum(f.samples for f in container.decode(audio[0]))
            info["audio_seconds"] = samples / audio[0].rate
    return info


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        return [
            f.to_ndarray(
                format="rgb24",
                src_colorspace={1: "ITU709"}.get(cc.colorspace, "ITU601"),
                src_color_range="JPEG" if cc.color_range == 2 else "MPEG",
            )
            for f in container.decode(stream)
        ]


def display_matrix(path: Path) -> tuple[int, ...] | None:
    """The display matrix the first decoded frame of `path` carries (from its container)."""
    from av.sidedata.sidedata import Type

    with av.open(str(path)) as container:
        data = next(container.decode(video=0)).side_data.get(Type.DISPLAYMATRIX)
        return struct.unpack("=9i", bytes(data)) if data is not None else None


def write_exif_image(path: Path, rgb: np.ndarray, orientation: int) -> Path:
    """An image (RGB or RGBA) stored as it came off the sensor, with an EXIF Orientation tag."""
    exif = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + bytes(4)
    bgr = np.ascontiguousarray(np.dstack([rgb[:, :, 2::-1], rgb[:, :, 3:]]))
    ok, data = cv2.imencodeWithMetadata(path.suffix, bgr, [cv2.IMAGE_METADATA_EXIF], [np.frombuffer(exif, np.uint8)])
    assert ok
    path.write_bytes(data.tobytes())
    return path
