"""Faithful I/O: frames, timestamps, rates, audio, colour, bit depth and sizes survive a run.

These run the real threaded pipeline with real FFmpeg on both ends, with an identity
"model", so they check the I/O alone and stay fast.
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from media import clip_frames, decode_rgb, display_matrix, probe, texture, write_exif_image, write_video
from safetensors.torch import save_file

from streamdeblur.core.errors import InputError, OutputError, StreamdeblurError, UsageError
from streamdeblur.core.files import atomic_write, atomic_write_text, file_mode, partial_path
from streamdeblur.core.frame import Frame
from streamdeblur.file import run_file
from streamdeblur.io.containers import choose_pix_fmt
from streamdeblur.io.sinks import EncodeOptions, check_file_output, open_file_sink
from streamdeblur.io.sources import ImageSequenceSource, VideoFileSource, open_source
from streamdeblur.io.sources.images import expand_sequence
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.pipeline import Pipeline
from streamdeblur.pipeline.stats import RunStats, write_report


def _write(path: Path, data: bytes | str) -> Path:
    """Create a file with `data` and return its path (for parametrized bad inputs)."""
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def passthrough(
    src: str | Path, dst: str | Path, process=lambda f: f, overwrite: bool = False, codec: str | None = None
) -> RunStats:
    """Run the pipeline with an identity (or given) processing step."""
    source = open_source(src)
    check_file_output(str(dst), source, overwrite, codec)
    stats = RunStats()
    sink = open_file_sink(str(dst), source, EncodeOptions(codec=codec, crf=10))
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


def test_the_yuv_rgb_round_trip_keeps_brightness(tmp_path: Path) -> None:
    """Decode → RGB → encode with nothing in between (a lossless encoder) gives the luma back
    exactly on average: swscale's default conversions made every output about a level darker."""
    # Colours inside the gamut, as in camera footage (saturated test patterns clip in RGB
    # where 4:2:0 chroma spreads over an edge, which is a loss of its own).
    frames = [
        (cv2.GaussianBlur(texture(160, 96, shift=3 * i, seed=i), (5, 5), 0) * 0.6 + 50).astype(np.uint8)
        for i in range(3)
    ]
    src = write_video(tmp_path / "t.mkv", frames, codec="ffv1")
    passthrough(src, tmp_path / "out.mkv", codec="ffv1")

    def luma_planes(path: Path) -> list[np.ndarray]:
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="gray").astype(float) for f in container.decode(video=0)]

    for before, after in zip(luma_planes(src), luma_planes(tmp_path / "out.mkv"), strict=True):
        assert abs(after.mean() - before.mean()) < 0.05
        assert np.abs(after - before).mean() < 0.5


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
        check_file_output("out%.png", open_source("frames/%04d.png"), overwrite=False)


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
            check_file_output(str(tmp_path / "exists.mp4"), source, overwrite=False)
        check_file_output(str(tmp_path / "exists.mp4"), source, overwrite=True)
        assert check_file_output(str(tmp_path / "new" / "out.mp4"), source, overwrite=False) == [tmp_path / "new"]
        with pytest.raises(OutputError, match="cannot create folder"):
            check_file_output(str(tmp_path / "exists.mp4" / "out.mp4"), source, overwrite=False)
        with pytest.raises(UsageError, match="must be a video"):
            check_file_output(str(tmp_path / "out.png"), source, overwrite=False)
        with pytest.raises(OutputError, match="overwrite INPUT"):
            check_file_output(str(src), source, overwrite=True)


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


@pytest.mark.parametrize(
    "src_name,out_name,codec,angle",
    [
        ("in.mp4", "out.mp4", "libx264", 90),
        ("in.mov", "out.mov", "libx264", -90),
        ("in.mkv", "out.mkv", "libx264", 180),
        ("in.webm", "out.webm", "libvpx-vp9", 90),
        ("in.mp4", "out.mp4", "libx264", 30),
        ("in.mov", "out.mkv", "libx264", 90),
    ],
)
def test_display_matrix_survives(tmp_path: Path, src_name: str, out_name: str, codec: str, angle: int) -> None:
    """A phone video's rotation (any angle, any container that stores one) plays as it did."""
    src = write_video(tmp_path / src_name, clip_frames(3, 64, 48), codec=codec, rotation=angle)
    matrix = display_matrix(src)
    assert matrix is not None
    passthrough(src, tmp_path / out_name)
    assert display_matrix(tmp_path / out_name) == matrix
    assert probe(tmp_path / out_name)["size"] == (64, 48)  # the picture itself stays as stored


def test_unrotated_video_gets_no_display_matrix(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 64, 48))
    passthrough(src, tmp_path / "out.mp4")
    assert display_matrix(tmp_path / "out.mp4") is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_not_written(tmp_path: Path, orientation: int) -> None:
    """The output looks like the input does in a viewer (OpenCV's own EXIF handling stands in for
    one), alpha turned along, and carries no orientation that could turn it again."""
    alpha = np.linspace(0, 255, 30 * 40).reshape(30, 40).astype(np.uint8)
    src = write_exif_image(tmp_path / "in.png", np.dstack([texture(40, 30), alpha]), orientation)
    passthrough(src, tmp_path / "out.png")
    out, kinds, _ = cv2.imreadWithMetadata(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert cv2.IMAGE_METADATA_EXIF not in kinds
    assert np.array_equal(out[:, :, :3], cv2.imread(str(src), cv2.IMREAD_COLOR))
    shown_alpha = write_exif_image(tmp_path / "alpha.png", np.dstack([alpha] * 3), orientation)
    assert np.array_equal(out[:, :, 3], cv2.imread(str(shown_alpha), cv2.IMREAD_COLOR)[:, :, 0])


def test_phone_photo_is_read_upright(tmp_path: Path) -> None:
    src = write_exif_image(tmp_path / "photo.jpg", texture(40, 30), 6)  # a portrait shot: turn 90° clockwise
    with open_source(src) as source:
        assert (source.info.width, source.info.height) == (30, 40)
        image = next(source.frames()).image
    assert np.array_equal(image, cv2.imread(str(src), cv2.IMREAD_COLOR)[:, :, ::-1])


def test_frame_count_in_a_header_is_only_a_hint(tmp_path: Path) -> None:
    """FFmpeg's AVI (mpeg4 + mp3) counts a frame the source skipped as an empty chunk: the header
    announces more frames than there are, and the file is whole all the same."""
    pts = [0, *range(2, 31)]
    frames = clip_frames(30, 128, 72)
    src = write_video(tmp_path / "in.avi", frames, pts=pts, codec="mpeg4", audio_seconds=1.24, audio_codec="libmp3lame")
    with open_source(src) as source:
        assert source.info.frame_count > 30
    stats = passthrough(src, tmp_path / "out.mkv")
    assert stats.frames_out == probe(tmp_path / "out.mkv")["frames"] == 30
    assert stats.damage is None


def _cut(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) * 2 // 3])
    return dst


def _scribble(src: Path, dst: Path) -> Path:
    """4 KiB of garbage over the middle of the file: corrupt packets. More than a packet of
    these clips (about 2 KiB), so it always covers the start of one: in an MP4, an H.264
    length prefix that no decoder takes (x264's bytes vary a little from run to run here, and
    1 KiB inside one packet's data was once decoded without an error)."""
    data = src.read_bytes()
    middle = len(data) // 2
    dst.write_bytes(data[:middle] + bytes(range(256)) * 16 + data[middle + 4096 :])
    return dst


@pytest.mark.parametrize(
    "name,codec,damage,least",
    [
        ("cut.mkv", "libx264", _cut, 15),
        ("cut.mp4", "libx264", _cut, 15),  # index first (faststart): it opens
        ("scribbled.mp4", "libx264", _scribble, 25),
        ("scribbled.webm", "libvpx-vp9", _scribble, 10),
    ],
)
def test_damaged_input_gives_every_frame_that_decodes(tmp_path: Path, name: str, codec: str, damage, least: int):
    ext = Path(name).suffix
    whole = write_video(tmp_path / f"whole{ext}", clip_frames(30, 64, 48), codec=codec, faststart=ext == ".mp4")
    stats = passthrough(damage(whole, tmp_path / name), tmp_path / f"out{ext}")
    assert stats.damage is not None and stats.damage.problems, stats.damage
    assert stats.damage.frames_decoded == stats.frames_in == stats.frames_out >= least
    assert probe(tmp_path / f"out{ext}")["frames"] == stats.frames_out
    assert stats.report().to_json()["input_damaged"]["frames_decoded"] == stats.frames_out


@pytest.mark.parametrize(
    "out_name,ten_bit,codec,pix_fmt",
    [
        ("out.mp4", False, "h264", "yuv420p"),
        ("out.mkv", True, "h264", "yuv420p10le"),
        ("out.webm", False, "vp9", "yuv420p"),
        ("out.webm", True, "av1", "yuv420p10le"),  # the bundled libvpx is 8-bit only; SVT-AV1 keeps 10 bits
    ],
)
def test_the_container_decides_the_default_codec(
    tmp_path: Path, out_name: str, ten_bit: bool, codec: str, pix_fmt: str
) -> None:
    frames = clip_frames(3, 64, 48)
    if ten_bit:
        frames = [f.astype(np.uint16) * 257 for f in frames]
    src = write_video(tmp_path / "in.mkv", frames, pix_fmt="yuv420p10le" if ten_bit else "yuv420p")
    passthrough(src, tmp_path / out_name)
    with av.open(str(tmp_path / out_name)) as container:
        assert container.streams.video[0].codec_context.name in (codec, f"lib{codec}", "libdav1d")
    assert probe(tmp_path / out_name)["pix_fmt"] == pix_fmt


def test_codecs_and_formats_the_output_cannot_take_are_usage_errors(tmp_path: Path) -> None:
    ten_bit = [f.astype(np.uint16) * 257 for f in clip_frames(2, 64, 48)]
    src = write_video(tmp_path / "in.mkv", ten_bit, pix_fmt="yuv420p10le")
    with open_source(src) as source:
        with pytest.raises(UsageError, match="--codec libx264: .webm cannot hold it"):
            check_file_output(str(tmp_path / "o.webm"), source, False, "libx264")
        with pytest.raises(UsageError, match="unsupported video format .xyz"):
            check_file_output(str(tmp_path / "o.xyz"), source, False)
        with pytest.raises(UsageError, match="unknown encoder"):
            check_file_output(str(tmp_path / "o.mp4"), source, False, "nope")
        sink = open_file_sink(str(tmp_path / "o.webm"), source, EncodeOptions(codec="libvpx-vp9"))
        sink.abort()
    assert sink.warnings == ["libvpx-vp9 cannot encode 10-bit video: written as 8-bit"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_interrupt_counts_every_frame_and_ends_audio_with_the_video(tmp_path: Path) -> None:
    """Ctrl-C: frames read but not processed are dropped (and counted); the audio demuxed ahead
    of them is not written."""
    src = write_video(tmp_path / "in.mp4", clip_frames(60, 64, 48), audio_seconds=2.4)
    out = tmp_path / "out.mp4"
    source = open_source(src)
    check_file_output(str(out), source, overwrite=False)
    stats = RunStats()
    pipeline = Pipeline(
        source, [open_file_sink(str(out), source, EncodeOptions())], lambda f: time.sleep(0.02) or f, stats
    )
    pressed: list[bool] = []

    def ctrl_c() -> None:
        if stats.frames_out >= 10 and not pressed:
            pressed.append(True)
            raise KeyboardInterrupt

    with source:
        assert pipeline.run(on_tick=ctrl_c, tick=0.01) is True
    assert stats.frames_in == stats.frames_out + stats.frames_dropped and stats.frames_dropped > 0
    info = probe(out)
    assert info["frames"] == stats.frames_out < 60
    video_end = info["times"][-1] + 1 / 25
    assert video_end - 0.03 <= info["audio_seconds"] <= video_end + 0.03, (info["audio_seconds"], video_end)


def test_written_files_get_the_umask_mode(tmp_path: Path) -> None:
    """Videos, images, reports and files of writers that make them 0600 (safetensors)."""
    old = os.umask(0o027)
    file_mode.cache_clear()
    try:
        src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
        passthrough(src, tmp_path / "out.mp4")
        cv2.imwrite(str(tmp_path / "in.png"), texture(32, 24))
        passthrough(tmp_path / "in.png", tmp_path / "out.png")
        write_report(tmp_path / "report.json", {})
        atomic_write(tmp_path / "w.safetensors", lambda temp: save_file({"x": torch.zeros(1)}, str(temp)))
        for name in ("out.mp4", "out.png", "report.json", "w.safetensors"):
            assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o640), name
    finally:
        os.umask(old)
        file_mode.cache_clear()


def test_output_folders_are_made_and_removed_when_nothing_came(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
    passthrough(src, tmp_path / "new" / "deeper" / "out.mp4")
    assert probe(tmp_path / "new" / "deeper" / "out.mp4")["frames"] == 2
    config = RunConfig(model="rt-focuser", weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(StreamdeblurError):
        run_file(str(src), str(tmp_path / "gone" / "deeper" / "out.mp4"), config)
    assert not (tmp_path / "gone").exists()
