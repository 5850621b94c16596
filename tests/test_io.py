"""Faithful I/O: frames, timestamps, rates, audio, colour, bit depth and sizes survive a run.

These run the real threaded pipeline with real FFmpeg on both ends, with an identity
"model", so they check the I/O alone and stay fast.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import clip_frames, decode_rgb, probe, texture, write_video

from streamdeblur.errors import InputError, OutputError, UsageError
from streamdeblur.io.files import atomic_write_text
from streamdeblur.io.frame import Frame
from streamdeblur.io.sinks import EncodeOptions, check_output, choose_pix_fmt, open_sink, partial_path
from streamdeblur.io.sources import ImageSequenceSource, VideoFileSource, expand_sequence, open_source
from streamdeblur.pipeline.runner import Pipeline
from streamdeblur.pipeline.stats import RunStats


def _write(path: Path, data: bytes | str) -> Path:
    """Create a file with `data` and return its path (for parametrized bad inputs)."""
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def passthrough(src: str | Path, dst: str | Path, process=lambda f: f, overwrite: bool = False) -> RunStats:
    """Run the pipeline with an identity (or given) processing step."""
    source = open_source(src)
    check_output(str(dst), source, overwrite)
    stats = RunStats()
    sink = open_sink(str(dst), source, EncodeOptions(crf=10))
    with source:
        assert Pipeline(source, [sink], process, stats).run() is False
    return stats


def test_timestamps_rate_and_audio_survive_ntsc_rate(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(24, 64, 48), rate=Fraction(30000, 1001), audio_seconds=1.0)
    passthrough(src, tmp_path / "out.mp4")
    a, b = probe(src), probe(tmp_path / "out.mp4")
    assert b["frames"] == a["frames"] == 24
    assert b["rate"] == Fraction(30000, 1001)
    assert b["times"] == a["times"]
    assert b["audio_seconds"] == pytest.approx(a["audio_seconds"], abs=1e-6)
    assert b["streams"] == ["video", "audio"]
    assert not partial_path(tmp_path / "out.mp4").exists()


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    pts = [0, 1, 3, 4, 8, 9, 10, 15, 16, 30]
    src = write_video(tmp_path / "vfr.mkv", clip_frames(len(pts), 64, 48), rate=30, pts=pts, time_base=Fraction(1, 30))
    passthrough(src, tmp_path / "out.mkv")
    a, b = probe(src), probe(tmp_path / "out.mkv")
    assert b["frames"] == len(pts)
    assert b["times"] == pytest.approx(a["times"], abs=1e-3)  # matroska stores milliseconds
    assert b["times"] == pytest.approx([p / 30 for p in pts], abs=1e-3)


def test_avi_with_b_frames_gets_a_constant_rate_timeline(tmp_path: Path) -> None:
    """AVI has no presentation timestamps: H.264 with B-frames decodes with scrambled pts."""
    src = write_video(tmp_path / "b.avi", clip_frames(12, 64, 48))
    seen = []
    passthrough(src, tmp_path / "out.mp4", process=lambda f: seen.append(f.pts) or f)
    assert seen == list(range(12))
    out = probe(tmp_path / "out.mp4")
    assert out["frames"] == 12 and out["times"] == pytest.approx([i / 25 for i in range(12)])


def test_ten_bit_input_stays_ten_bit(tmp_path: Path) -> None:
    frames = [(f.astype(np.uint16) * 257) for f in clip_frames(4, 64, 48)]
    src = write_video(tmp_path / "10bit.mkv", frames, pix_fmt="yuv420p10le")
    seen = []
    passthrough(src, tmp_path / "out.mkv", process=lambda f: seen.append(f.image.dtype) or f)
    assert seen and all(dtype == np.uint16 for dtype in seen)
    assert probe(tmp_path / "out.mkv")["pix_fmt"] == "yuv420p10le"


def test_odd_size_is_kept_exactly(tmp_path: Path) -> None:
    src = write_video(tmp_path / "odd.mp4", clip_frames(3, 161, 97), pix_fmt="yuv444p")
    passthrough(src, tmp_path / "out.mp4")
    out = probe(tmp_path / "out.mp4")
    assert out["size"] == (161, 97) and out["frames"] == 3
    error = decode_rgb(tmp_path / "out.mp4")[1].astype(float) - decode_rgb(src)[1]
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 30  # a re-encode, not a shifted or garbled picture


def test_odd_size_from_subsampled_codec_is_encoded_444() -> None:
    from streamdeblur.io.colour import resolve_colour
    from streamdeblur.io.sources import SourceInfo

    info = SourceInfo(
        "x", "video", 1279, 719, Fraction(25), Fraction(1, 25), 1, 8, resolve_colour(1, 1, 1, 1, 719, None), "yuv420p"
    )
    assert choose_pix_fmt(av.codec.Codec("libx264", "w"), info) == "yuv444p"


@pytest.mark.parametrize("matrix,range_", [(1, 2), (6, 1)])
def test_colour_matrix_and_range_are_read_and_tagged(tmp_path: Path, matrix: int, range_: int) -> None:
    # Flat colour patches: a wrong matrix or range would shift them by many levels.
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 40, 60)
    rgb[:, 32:] = (30, 180, 220)
    src = write_video(tmp_path / "c.mp4", [rgb] * 3, colour=(matrix, range_))
    seen = []
    passthrough(src, tmp_path / "out.mp4", process=lambda f: seen.append(f.image[24, [8, 50]].copy()) or f)
    assert np.abs(seen[0].astype(int) - [[200, 40, 60], [30, 180, 220]]).max() <= 4
    out = probe(tmp_path / "out.mp4")
    assert (out["colorspace"], out["color_range"]) == (matrix, range_)
    back = decode_rgb(tmp_path / "out.mp4")[0]
    assert np.abs(back[24, [8, 50]].astype(int) - [[200, 40, 60], [30, 180, 220]]).max() <= 6


def test_image_keeps_alpha_and_16_bits(tmp_path: Path) -> None:
    rgb16 = texture(40, 30).astype(np.uint16) * 257
    alpha = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), np.dstack([rgb16[:, :, ::-1], alpha]))
    passthrough(tmp_path / "in.png", tmp_path / "out.png")
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (30, 40, 4)
    assert np.array_equal(out[:, :, 3], alpha) and np.array_equal(out[:, :, 2::-1], rgb16)


def test_image_sequence_printf_and_glob(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for n in (7, 8, 10):
        cv2.imwrite(str(tmp_path / "in" / f"f{n:04d}.png"), texture(32, 24, shift=n))
    cv2.imwrite(str(tmp_path / "in" / "other.png"), texture(32, 24))
    paths, numbers = expand_sequence(str(tmp_path / "in" / "f%04d.png"))
    assert numbers == [7, 8, 10] and [p.name for p in paths] == ["f0007.png", "f0008.png", "f0010.png"]
    assert isinstance(open_source(str(tmp_path / "in" / "f*.png")), ImageSequenceSource)
    passthrough(str(tmp_path / "in" / "f%04d.png"), str(tmp_path / "out" / "g%03d.png"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["g007.png", "g008.png", "g010.png"]
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "g010.png")), texture(32, 24, shift=10))


def test_sequence_in_a_folder_and_files_with_pattern_characters(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("frames").mkdir()
    for n in range(3):
        cv2.imwrite(f"frames/{n:04d}.png", texture(32, 24, shift=n))
    assert expand_sequence("frames/%04d.png")[1] == [0, 1, 2]  # the README's own example
    Path("clip [1080p].png").write_bytes(Path("frames/0000.png").read_bytes())
    assert not isinstance(open_source("clip [1080p].png"), ImageSequenceSource)  # an existing file is a file
    with pytest.raises(UsageError, match="printf pattern"):
        check_output("out%.png", open_source("frames/%04d.png"), overwrite=False)


def test_error_aborts_and_leaves_existing_output_untouched(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(6, 64, 48))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")

    def explode(frame: Frame) -> Frame:
        if frame.index == 3:
            raise RuntimeError("boom")
        return frame

    with pytest.raises(RuntimeError, match="boom"):
        passthrough(src, out, process=explode, overwrite=True)
    assert out.read_bytes() == b"precious"
    assert not partial_path(out).exists()


def test_truncated_input_is_an_error(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(40, 64, 48))
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # moov is at the end: a cut file does not open
    with pytest.raises(InputError):
        passthrough(cut, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: _write(d / "empty.mp4", b""), "empty"),
        (lambda d: _write(d / "notes.txt", "hello " * 100), "not a video"),
        (lambda d: _write(d / "fake.png", b"\x89PNG nope"), "not a readable image"),
    ],
)
def test_bad_inputs_are_input_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_source(make(tmp_path))


def test_output_checks(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
    with open_source(src) as source:
        (tmp_path / "exists.mp4").write_bytes(b"x")
        with pytest.raises(OutputError, match="already exists"):
            check_output(str(tmp_path / "exists.mp4"), source, overwrite=False)
        check_output(str(tmp_path / "exists.mp4"), source, overwrite=True)
        with pytest.raises(OutputError, match="does not exist"):
            check_output(str(tmp_path / "nope" / "out.mp4"), source, overwrite=False)
        with pytest.raises(UsageError, match="must be a video"):
            check_output(str(tmp_path / "out.png"), source, overwrite=False)
        with pytest.raises(OutputError, match="overwrite INPUT"):
            check_output(str(src), source, overwrite=True)


def test_failed_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.mkdir()  # the final rename fails
    with pytest.raises(OSError):
        atomic_write_text(target, "{}\n")
    assert not partial_path(target).exists() and target.is_dir()


def test_presentation_pts_always_increase() -> None:
    """A frame without a pts among timed ones (its stand-in `index * step` lies behind) is nudged too."""
    pts = VideoFileSource._presentation_pts
    assert pts(9000, 3, 1000, 6000, False) == 9000
    assert pts(6000, 3, 1000, 6000, False) == 6001
    assert pts(None, 3, 1000, 90000, False) == 90001
    assert pts(None, 3, 1000, None, False) == 3000
    assert pts(7, 3, 1000, 2000, True) == 3000  # AVI: by index
