"""`streamdeblur eval`: its figures equal a direct computation; synthetic evaluation is reproducible."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from media import motion_blur, texture
from test_cli import assert_one_line_error, run_cli

from streamdeblur.core.metrics import blur_score, luma
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.engine.weights import load_model, save_weights
from streamdeblur.models import create_model, get_spec
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.evaluate import EvalOptions, evaluate, prepare

skimage_metrics = pytest.importorskip("skimage.metrics")


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1])


@pytest.fixture(scope="module")
def paired(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """blur/ + sharp/: a 3-frame clip and a loose image."""
    root = tmp_path_factory.mktemp("paired")
    frames = {"clip/000.png": 0, "clip/001.png": 1, "clip/002.png": 2, "single.png": 5}
    for name, seed in frames.items():
        sharp = texture(40, 32, shift=2 * seed, seed=seed)
        write_png(root / "sharp" / name, sharp)
        write_png(root / "blur" / name, motion_blur(sharp, 5))
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for name in ("rt-focuser", "uhdvd"):
        torch.manual_seed(0)
        paths[name] = save_weights(create_model(name).state_dict(), folder / f"{name}.safetensors", get_spec(name))
    return paths


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[:, :, ::-1].copy()


def direct(model_name: str, weights: Path, paired: Path) -> dict[str, list[float]]:
    """The figures computed by hand: the plain model (not the inference form), scikit-image."""
    model = load_model(model_name, weights).eval()
    clips = [sorted((paired / "sharp" / "clip").iterdir()), [paired / "sharp" / "single.png"]]
    rows: dict[str, list[float]] = {}
    for clip in clips:
        prev = None
        for sharp_path in clip:
            sharp = read(sharp_path)
            blurry = read(paired / "blur" / sharp_path.relative_to(paired / "sharp"))
            with torch.no_grad():
                x = torch.from_numpy(blurry).permute(2, 0, 1)[None].float() / 255
                y = model(x, prev)
                prev = y
            output = (y.clamp(0, 1) * 255).round().byte()[0].permute(1, 2, 0).numpy()
            for key, image in (("input", blurry), ("output", output)):
                rows.setdefault(f"psnr_{key}", []).append(skimage_metrics.peak_signal_noise_ratio(sharp, image))
                rows.setdefault(f"ssim_{key}", []).append(
                    skimage_metrics.structural_similarity(
                        sharp, image, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                    )
                )
                rows.setdefault(f"sharpness_{key}", []).append(blur_score(luma(image)))
            rows.setdefault("sharpness_gt", []).append(blur_score(luma(sharp)))
    return rows


def run_eval_json(capsys: pytest.CaptureFixture, *args: object) -> dict:
    capsys.readouterr()
    code, err = run_cli("eval", *args, "--json")
    assert code == 0, err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model", ["rt-focuser", pytest.param("uhdvd", marks=pytest.mark.slow)])
def test_eval_equals_a_direct_computation(model: str, paired: Path, weights: dict, capsys) -> None:
    report = run_eval_json(capsys, "--model", model, "--weights", weights[model], "--data", paired, "--split", "all")
    expected = direct(model, weights[model], paired)
    mean = {key: statistics.fmean(values) for key, values in expected.items()}
    assert report["frames"] == 4 and [c["frames"] for c in report["clips"]] == [3, 1]
    assert report["psnr"]["input"] == pytest.approx(mean["psnr_input"], abs=1e-6)
    assert report["ssim"]["input"] == pytest.approx(mean["ssim_input"], abs=1e-6)
    # The product runs the inference form of the model: equal up to float rounding before 8 bits.
    assert report["psnr"]["output"] == pytest.approx(mean["psnr_output"], abs=0.01)
    assert report["ssim"]["output"] == pytest.approx(mean["ssim_output"], abs=1e-4)
    assert report["psnr"]["gain"] == pytest.approx(report["psnr"]["output"] - report["psnr"]["input"])
    assert report["sharpness"]["input"] == pytest.approx(mean["sharpness_input"])
    assert report["sharpness"]["ground_truth"] == pytest.approx(mean["sharpness_gt"])
    assert report["sharpness"]["output"] == pytest.approx(mean["sharpness_output"], rel=0.01)
    assert report["ms_per_frame"] > 0 and report["model"] == model and report["blur"] is None


def test_synthetic_evaluation_is_reproducible(tmp_path: Path, weights: dict, capsys) -> None:
    for i in range(2):
        write_png(tmp_path / "photos" / f"p{i}.png", cv2.resize(texture(50, 40, seed=i), (100, 80)))
    args = [
        "--model",
        "rt-focuser",
        "--weights",
        weights["rt-focuser"],
        "--data",
        f"sharp:{tmp_path}",
        "--split",
        "all",
    ]
    first = run_eval_json(capsys, *args, "--frames", "2")
    again = run_eval_json(capsys, *args, "--frames", "2")
    assert first["frames"] == 4 and first["blur"] == "default" and first["seed"] == 0
    assert first["clips"] == again["clips"]  # the same blur, to the bit
    other_seed = run_eval_json(capsys, *args, "--frames", "2", "--seed", "1")
    assert other_seed["clips"] != first["clips"]
    mild = run_eval_json(capsys, *args, "--frames", "2", "--blur", "mild")
    assert mild["psnr"]["input"] > first["psnr"]["input"] + 3  # nearly sharp frames
    cropped = run_eval_json(capsys, *args, "--crop", "24", "--max-clips", "1")
    assert cropped["frames"] == 1


def test_prepared_frames_give_the_same_figures(paired: Path, weights: dict, tmp_path: Path) -> None:
    """Training evaluates on frames read, blurred and measured once: the figures are the same."""
    for i in range(2):
        write_png(tmp_path / f"p{i}.png", cv2.resize(texture(50, 40, seed=i), (100, 80)))
    spec = get_spec("rt-focuser")
    runner = ModelRunner(load_model(spec.name, weights[spec.name]).for_inference(), spec, torch.device("cpu"), "fp32")
    datasets = [open_dataset(str(paired), "all"), open_dataset(f"sharp:{tmp_path}", "all")]
    options = EvalOptions(crop=24, frames=2)
    prepared = prepare(datasets, options)
    figures = lambda report: {  # noqa: E731
        **{k: v for k, v in report.items() if k not in ("datasets", "ms_per_frame", "fps")},
        "datasets": [{k: v for k, v in d.items() if k not in ("ms_per_frame", "fps")} for d in report["datasets"]],
    }
    direct = figures(evaluate(runner, datasets, options))
    assert direct["frames"] == 8 and figures(evaluate(runner, prepared, options)) == direct
    assert figures(evaluate(runner, prepared, options)) == direct  # and again
    assert prepare(datasets, options, max_bytes=10_000) is None  # too big to keep: read again each time


def test_eval_table_report_file_and_errors(paired: Path, weights: dict, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    args = ["--model", "rt-focuser", "--weights", weights["rt-focuser"], "--split", "all", "--crop", "24"]
    code, err = run_cli("eval", *args, "--data", paired, "-o", out)
    assert code == 0 and "PSNR (dB)" in err and "4 frames" in err and "ms per frame" in err
    report = json.loads(out.read_text())
    assert report["datasets"][0]["data"] == f"paired:{paired}" and report["frames"] == 4
    code, err = run_cli("eval", *args)
    assert_one_line_error(code, err, 2, "give evaluation data with --data")
    code, err = run_cli("eval", *args, "--data", f"reds:{paired}")
    assert_one_line_error(code, err, 1, "no data found in the reds layout")
