"""`streamdeblur compare`: side-by-side pictures and videos with blur scores."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from media import clip_frames, motion_blur, probe, texture, write_video
from test_cli import assert_one_line_error, run_cli

from streamdeblur.compare import edge_map, side_by_side
from streamdeblur.core.metrics import sharpness


def test_side_by_side_panels_and_edges() -> None:
    sharp = texture(96, 64)
    blurry = motion_blur(sharp, 9)
    two, three = side_by_side(blurry, sharp, edges=False), side_by_side(blurry, sharp, edges=True)
    assert two.shape == (64, 192, 3) and three.shape == (64, 288, 3)
    assert np.array_equal(two[30:, 96:], sharp[30:]) and np.array_equal(two[30:, :96], blurry[30:])  # below the banner
    assert two[:10].mean() < sharp[:10].mean()  # the banner with the score
    edges = edge_map(blurry, sharp)
    assert edges[..., 1].mean() > edges[..., 0].mean()  # the sharp output has more edges (green) than the input
    assert sharpness(sharp) > sharpness(blurry)


def test_compare_images_and_videos(tmp_path: Path) -> None:
    sharp = texture(80, 48)
    cv2.imwrite(str(tmp_path / "in.png"), motion_blur(sharp, 7)[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "out.png"), sharp[:, :, ::-1])
    code, err = run_cli("compare", tmp_path / "in.png", tmp_path / "out.png", "-o", tmp_path / "sbs.png", "--edges")
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "sbs.png")).shape == (48, 240, 3)

    rate = Fraction(30000, 1001)
    write_video(tmp_path / "in.mp4", clip_frames(6, 64, 48, blur_from=0), rate=rate)
    write_video(tmp_path / "out.mp4", clip_frames(6, 64, 48), rate=rate)
    code, err = run_cli("compare", tmp_path / "in.mp4", tmp_path / "out.mp4", "-o", tmp_path / "sbs.mp4")
    assert code == 0 and "6 frame(s)" in err, err
    a, b = probe(tmp_path / "in.mp4"), probe(tmp_path / "sbs.mp4")
    assert b["size"] == (128, 48) and b["frames"] == 6 and b["times"] == a["times"] and b["rate"] == rate
    code, err = run_cli("compare", tmp_path / "in.mp4", tmp_path / "out.mp4", "-o", tmp_path / "f.png", "--frame", "3")
    assert code == 0 and cv2.imread(str(tmp_path / "f.png")).shape == (48, 128, 3)


def test_compare_errors(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", clip_frames(4, 64, 48))
    write_video(tmp_path / "b.mp4", clip_frames(3, 64, 48))
    write_video(tmp_path / "c.mp4", clip_frames(4, 32, 48))
    code, err = run_cli("compare", tmp_path / "a.mp4", tmp_path / "c.mp4", "-o", tmp_path / "x.mp4")
    assert_one_line_error(code, err, 1, "is 32x48 but")
    code, err = run_cli("compare", tmp_path / "a.mp4", tmp_path / "b.mp4", "-o", tmp_path / "x.mp4")
    assert_one_line_error(code, err, 1, "has fewer frames (3) than")
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.partial.mp4").exists()
    code, err = run_cli("compare", tmp_path / "a.mp4", tmp_path / "a.mp4", "-o", tmp_path / "b.mp4")
    assert_one_line_error(code, err, 1, "already exists")
    before = (tmp_path / "a.mp4").read_bytes()
    code, err = run_cli("compare", tmp_path / "a.mp4", tmp_path / "a.mp4", "-o", tmp_path / "a.mp4", "--overwrite")
    assert_one_line_error(code, err, 1, "would overwrite one of the files it compares")
    assert (tmp_path / "a.mp4").read_bytes() == before
    code, err = run_cli("compare", tmp_path / "nope.mp4", tmp_path / "a.mp4", "-o", tmp_path / "y.mp4", "--frame", "1")
    assert_one_line_error(code, err, 2, "--frame")
