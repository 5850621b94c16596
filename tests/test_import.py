"""`streamdeblur import-weights`: official checkpoints in, our format out, the same function."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from safetensors import safe_open
from safetensors.torch import load_file
from test_cli import assert_one_line_error, run_cli
from test_models import PARITY_DB, psnr, read_rgb
from test_weights import assert_same_weights, fake_uhdvd_release

from streamdeblur.engine import weights
from streamdeblur.engine.weights import load_model


def test_uhdvd_release_dir_round_trip(tmp_path: Path) -> None:
    original = fake_uhdvd_release(tmp_path / "4KRD")
    out = tmp_path / "uhdvd.safetensors"
    code, err = run_cli("import-weights", tmp_path / "4KRD", "--model", "uhdvd", "-o", out)
    assert code == 0 and "imported uhdvd-release-dir" in err, err
    assert_same_weights(load_model("uhdvd", out), original)
    entry = weights.read_manifest(tmp_path)["uhdvd.safetensors"]
    assert entry["origin"] == "imported" and entry["precision"] == "fp32" and entry["sha256"] == weights.sha256(out)
    assert entry["source"]["format"] == "uhdvd-release-dir" and len(entry["source"]["files"]) == 8
    assert entry["source"]["files"]["encoder_lv1.pkl"] == weights.sha256(tmp_path / "4KRD" / "encoder_lv1.pkl")


def test_official_uhdvd_checkpoints_convert_exactly(tmp_path: Path) -> None:
    folder = shared_path("fixtures", "uhdvd_official")
    release = folder / "checkpoints" / "4KRD"
    out = tmp_path / "uhdvd.safetensors"
    code, err = run_cli("import-weights", release, "--model", "uhdvd", "-o", out)
    assert code == 0, err
    converted = load_model("uhdvd", out).eval()
    assert_same_weights(converted, load_model("uhdvd", release))
    expected = torch.from_numpy(np.load(folder / "b_expected.npy"))[0] + 0.5  # first frame of a clip
    with torch.inference_mode():
        assert psnr(converted(read_rgb(folder / "frames" / "b_0.png"))[0], expected) >= PARITY_DB


@pytest.mark.parametrize("half", [False, True])
def test_rt_focuser_pth_reproduces_the_official_output(tmp_path: Path, half: bool) -> None:
    folder = shared_path("fixtures", "rt_focuser_official")
    state, io = load_file(folder / "state_dict.safetensors"), load_file(folder / "io.safetensors")
    torch.save(state, tmp_path / "GoPro_RT_Focuser_Standard_256.pth")
    out = tmp_path / "rt-focuser.safetensors"
    args = ["import-weights", tmp_path / "GoPro_RT_Focuser_Standard_256.pth", "--model", "rt-focuser", "-o", out]
    code, err = run_cli(*args, *(["--half"] if half else []))
    assert code == 0, err
    with safe_open(out, framework="pt") as f:
        assert f.metadata()["origin"] == "imported"
        assert f.get_tensor("Conv_1x1.weight").dtype == (torch.float16 if half else torch.float32)
    with torch.inference_mode():
        score = psnr(load_model("rt-focuser", out).for_inference()(io["input"]), io["output"])
    assert score >= (45 if half else PARITY_DB), score
    assert weights.read_manifest(tmp_path)[out.name]["precision"] == ("fp16" if half else "fp32")


def test_import_errors(tmp_path: Path) -> None:
    fake_uhdvd_release(tmp_path / "4KRD")
    code, err = run_cli("import-weights", tmp_path / "4KRD", "--model", "rt-focuser", "-o", tmp_path / "x.safetensors")
    assert_one_line_error(code, err, 1, "are for uhdvd, not rt-focuser")
    code, err = run_cli("import-weights", tmp_path / "4KRD", "--model", "uhdvd", "-o", tmp_path / "x.pth")
    assert_one_line_error(code, err, 1, "must be a .safetensors file")
    code, err = run_cli("import-weights", tmp_path / "nope.pth", "--model", "uhdvd", "-o", tmp_path / "x.safetensors")
    assert_one_line_error(code, err, 1, "not found")
    (tmp_path / "taken.safetensors").write_bytes(b"x")
    code, err = run_cli("import-weights", tmp_path / "4KRD", "--model", "uhdvd", "-o", tmp_path / "taken.safetensors")
    assert_one_line_error(code, err, 1, "already exists")
    assert not (tmp_path / "x.safetensors").exists() and weights.read_manifest(tmp_path) == {}
