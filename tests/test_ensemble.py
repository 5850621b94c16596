"""`--views N`: a model run on shifted, flipped and transposed views of each frame, averaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from media import clip_frames, probe, write_video
from test_cli import assert_one_line_error, run_cli

from streamdeblur.core.errors import UsageError
from streamdeblur.engine.build import build_engine
from streamdeblur.engine.ensemble import VIEWS, SelfEnsemble, self_ensemble, view_table
from streamdeblur.pipeline.config import RunConfig


def test_self_ensemble_turns_each_view_back_before_averaging() -> None:
    """An orientation-blind model (a blur) comes out of every view as itself; a model that
    sees orientation (a one-sided shift) comes out of eight views as the mean of its turns."""
    x = torch.rand(2, 3, 12, 16)
    blur = lambda y: F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=False)  # noqa: E731
    for views in VIEWS:
        assert torch.allclose(self_ensemble(blur, x, views), blur(x), atol=1e-6)
    shift = lambda y: torch.roll(y, 1, dims=-1)  # noqa: E731
    assert torch.equal(self_ensemble(shift, x, 1), shift(x))
    turns = [torch.roll(x, s, dims=d) for s in (1, -1) for d in (-1, -2)]  # right, down, left, up: 2 views each
    assert torch.allclose(self_ensemble(shift, x, 8), torch.stack(turns).mean(0), atol=1e-6)


def test_shifted_views_are_moved_back_before_averaging() -> None:
    """A model tied to a 2x2 grid (it zeroes the pixels whose row and column are both even)
    seen at shifts 0 and 1 zeroes the (even, even) pixels in one view and the (odd, odd) ones
    in the other, so those come out at half their value and the others whole. A model that works pixel by pixel
    comes out of every view as itself."""
    x = torch.rand(1, 3, 6, 8) + 1

    def grid(y: torch.Tensor) -> torch.Tensor:
        mask = torch.ones_like(y)
        mask[..., ::2, ::2] = 0
        return y * mask

    out = self_ensemble(grid, x, 2, period=2)
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(8), indexing="ij")
    same_parity = (rows % 2) == (cols % 2)
    assert torch.allclose(out, torch.where(same_parity, x / 2, x))
    for views in VIEWS:
        assert torch.allclose(self_ensemble(lambda y: 2 * y + 1, x, views, period=4), 2 * x + 1)


def test_a_model_on_a_grid_is_shifted_first_then_turned() -> None:
    assert view_table(2, period=1) == [(0, 0), (1, 0)]
    assert view_table(2, period=4) == [(0, 0), (0, 2)]
    assert view_table(8, period=4) == [(0, s) for s in range(4)] + [(1, s) for s in range(4)]


def test_an_engine_in_two_views_averages_the_frame_and_its_mirror_image(rt_weights: Path) -> None:
    engine = build_engine(RunConfig(model="rt-focuser", weights=str(rt_weights), device="cpu", views=2), (32, 32))
    net = engine.runner.model
    assert isinstance(net, SelfEnsemble) and "rt-focuser in 2 views" in engine.description
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        expected = (net.model(x) + net.model(x.flip(-1)).flip(-1)) / 2
        assert torch.allclose(net(x), expected, atol=1e-5)
    plain = build_engine(RunConfig(model="rt-focuser", weights=str(rt_weights), device="cpu"), (32, 32))
    assert not isinstance(plain.runner.model, SelfEnsemble)


def test_a_recurrent_model_runs_in_one_view_only() -> None:
    with pytest.raises(UsageError, match="uhdvd is recurrent and runs in one view only"):
        build_engine(RunConfig(model="uhdvd", device="cpu", views=2), (32, 32), untrained=True)


def test_file_mode_with_views_keeps_every_frame(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(3, 32, 32))
    args = ("--model", "rt-focuser", "--weights", rt_weights, "--device", "cpu")
    report = tmp_path / "report.json"
    code, err = run_cli(src, "-o", tmp_path / "out.mp4", *args, "--views", "4", "--report", report)
    assert code == 0, err
    assert probe(tmp_path / "out.mp4")["frames"] == 3
    assert json.loads(report.read_text())["views"] == 4
    code, err = run_cli(src, "-o", tmp_path / "bad.mp4", *args, "--views", "3")
    assert_one_line_error(code, err, 2, "--views")
