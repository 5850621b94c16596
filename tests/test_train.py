"""Training: the loss falls, resuming is exact, checkpoints are small, outputs are complete."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
import torch
import torch.nn.functional as F
from media import texture
from safetensors import safe_open
from safetensors.torch import load_file
from test_cli import assert_one_line_error, run_cli

from streamdeblur.core.errors import UsageError
from streamdeblur.core.metrics import psnr
from streamdeblur.engine import device
from streamdeblur.engine.device import CPU_NATIVE, cpu_has
from streamdeblur.engine.weights import load_model, read_manifest, save_weights, sha256
from streamdeblur.models import create_model, get_spec
from streamdeblur.train import checkpoint
from streamdeblur.train.batches import Batches
from streamdeblur.train.config import TrainConfig
from streamdeblur.train.datasets import open_dataset
from streamdeblur.train.loop import RunOptions, Trainer
from streamdeblur.train.losses import PIXEL_LOSSES
from streamdeblur.train.recipes import batch_loss
from streamdeblur.train.teacher import open_teacher


@pytest.fixture(scope="module")
def sharp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sharp 'photos' (textures at several scales); photo19 and photo25 are the held-out test split."""
    folder = tmp_path_factory.mktemp("sharp")
    for i in range(14, 26):
        image = cv2.resize(
            texture(60, 50, seed=i), (120, 100), interpolation=cv2.INTER_CUBIC if i % 2 else cv2.INTER_AREA
        )
        cv2.imwrite(str(folder / f"photo{i:02d}.png"), image)
    return folder


def tiny(data: Path, **changes) -> TrainConfig:
    settings = dict(model="rt-focuser", data=[str(data)], steps=12, batch=2, crop=32, lr=1e-3, log_every=1)
    settings |= dict(checkpoint_every=4, eval_data=[])
    return TrainConfig(**(settings | changes))


def test_training_lowers_the_loss(sharp_dir: Path, tmp_path: Path) -> None:
    summary = Trainer(tiny(sharp_dir, steps=20, checkpoint_every=100), RunOptions(tmp_path, "cpu")).run()
    losses = [row["loss"] for row in summary["history"]]
    assert summary["status"] == "finished" and len(losses) == 20 and all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.85 * first, losses


def test_resume_continues_to_the_same_result(sharp_dir: Path, tmp_path: Path) -> None:
    straight = Trainer(tiny(sharp_dir), RunOptions(tmp_path / "a", "cpu")).run()
    stopped = Trainer(tiny(sharp_dir), RunOptions(tmp_path / "b", "cpu", time_limit=0)).run()
    assert stopped["status"] == "time-limit" and stopped["step"] == 4  # at its first checkpoint
    resumed = Trainer(TrainConfig(model=None, data=None, steps=None), RunOptions(tmp_path / "b", "cpu", tmp_path / "b"))
    assert resumed.step == 4
    summary = resumed.run()
    assert summary["step"] == 12 and summary["history"] == [
        {k: v for k, v in row.items() if k not in ("steps_per_s", "elapsed_s")}
        | {k: row[k] for k in ("steps_per_s", "elapsed_s")}
        for row in summary["history"]
    ]
    losses = lambda s: [r["loss"] for r in s["history"]]  # noqa: E731
    assert losses(summary) == losses(straight)
    exported = [load_file(tmp_path / run / "rt-focuser.safetensors") for run in "ab"]
    assert all(torch.equal(exported[0][k], exported[1][k]) for k in exported[0])
    a, _ = checkpoint.load(checkpoint.latest(tmp_path / "a"))
    b, _ = checkpoint.load(checkpoint.latest(tmp_path / "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # model, EMA and Adam alike
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == [str(s) for s in range(1, 13)]


def test_losses_run_in_float32_under_bf16_autocast() -> None:
    """The forward pass may run under bf16 autocast (CUDA); the losses never do: SSIM's local
    variances are differences of near-equal numbers, and in bf16 they are off by hundredths."""

    class Brighten(torch.nn.Module):  # no autocast op: its output is float32, so only the loss could differ
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.9 * x + 0.05

    g = torch.Generator().manual_seed(0)
    sharp = F.avg_pool2d(torch.rand(4, 3, 48, 48, generator=g), 5, 1, 2)
    blurry = (F.avg_pool2d(sharp, 3, 1, 1) + 0.03 * torch.randn(sharp.shape, generator=g)).clamp(0, 1)
    spec = get_spec("rt-focuser")
    args = (Brighten(), spec, spec.recipe, blurry[:, None], sharp[:, None], PIXEL_LOSSES["l1-ssim"])
    full, _ = batch_loss(*args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed, _ = batch_loss(*args)
    assert mixed.dtype == torch.float32 and abs(mixed.item() - full.item()) < 1e-6


def test_psnr_loss_is_minus_the_mean_psnr_of_the_frames() -> None:
    """Per frame, as `eval` averages it: a frame with a tiny error weighs as much per dB as one
    with a large error (a batch-wide MSE would let the large error swamp it)."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 16, 16, generator=g)
    noise = torch.randn(target.shape, generator=g) * torch.tensor([0.003, 0.01, 0.1]).view(3, 1, 1, 1)
    out = target + noise
    expected = -psnr(out, target).mean()
    assert torch.allclose(PIXEL_LOSSES["psnr"](out, target), expected, atol=0.01)  # the 80 dB floor aside
    out.requires_grad_(True)
    PIXEL_LOSSES["psnr"](out, target).backward()
    per_frame = out.grad.flatten(1).norm(dim=1) * noise.flatten(1).norm(dim=1)
    assert torch.allclose(per_frame, per_frame[0].expand(3), rtol=0.01)  # gradient ∝ error / MSE


def test_resuming_from_an_older_checkpoint_abandons_the_newer_ones(sharp_dir: Path, tmp_path: Path) -> None:
    Trainer(tiny(sharp_dir, steps=6, checkpoint_every=2, keep=3), RunOptions(tmp_path, "cpu")).run()
    folders = tmp_path / "checkpoints"
    assert sorted(p.name for p in folders.iterdir()) == ["step_0000002", "step_0000004", "step_0000006"]
    resumed = Trainer(
        TrainConfig(model=None, data=None, steps=None), RunOptions(tmp_path, "cpu", folders / "step_0000002")
    )
    assert resumed.step == 2 and [p.name for p in folders.iterdir()] == ["step_0000002"]
    assert checkpoint.latest(tmp_path).name == "step_0000002"  # not step 6, whose log rows are gone
    assert [line.split(",")[0] for line in (tmp_path / "log.csv").read_text().splitlines()[1:]] == ["1", "2"]


def test_resume_does_not_read_the_init_weights_again(sharp_dir: Path, tmp_path: Path) -> None:
    init = save_weights(create_model("rt-focuser").state_dict(), tmp_path / "init.safetensors", get_spec("rt-focuser"))
    config = tiny(sharp_dir, steps=2, checkpoint_every=1, init=str(init))
    Trainer(config, RunOptions(tmp_path / "run", "cpu", time_limit=0)).run()
    init.unlink()  # moved away: the checkpoint holds every weight the run needs
    resumed = Trainer(
        TrainConfig(model=None, data=None, steps=None), RunOptions(tmp_path / "run", "cpu", tmp_path / "run")
    )
    assert resumed.step == 1 and resumed.config.init == str(init)


def test_checkpoints_are_small_shards(sharp_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny(sharp_dir, steps=2, checkpoint_every=1, keep=2), RunOptions(tmp_path, "cpu"))
    trainer.run()
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == ["step_0000001", "step_0000002"]
    shards = list((tmp_path / "checkpoints" / "step_0000002").glob("*.safetensors"))
    params = sum(p.numel() for p in trainer.model.parameters())
    assert all(s.stat().st_size <= checkpoint.SHARD_BYTES for s in shards)
    assert sum(s.stat().st_size for s in shards) < 8.1 * params  # 8 bytes per parameter, plus buffers


def test_fp16_check_keeps_fp32_when_rounding_costs_psnr(sharp_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import streamdeblur.train.loop as loop

    monkeypatch.setattr(loop, "FP16_TOLERANCE_DB", -1.0)  # no loss is small enough: fp32 must ship
    Trainer(tiny(sharp_dir, steps=2, eval_data=None, eval_max=2, eval_crop=32), RunOptions(tmp_path, "cpu")).run()
    with safe_open(tmp_path / "rt-focuser.safetensors", framework="pt") as f:
        assert f.get_tensor("Conv_1x1.weight").dtype == torch.float32
    assert read_manifest(tmp_path)["rt-focuser.safetensors"]["precision"] == "fp32"


def test_fp16_check_keeps_fp16_that_scores_better(sharp_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny(sharp_dir), RunOptions(tmp_path, "cpu"))
    trainer._evaluate = lambda model, precision: {"psnr": {"output": 31.0}}  # the fp16-rounded weights
    assert trainer.fp16_check({"psnr": {"output": 30.0}}) == (True, -1.0)  # 1 dB better: no loss at all
    assert trainer.fp16_check({"psnr": {"output": 31.06}})[0] is False  # 0.06 dB worse


def test_outputs_weights_manifest_and_export(sharp_dir: Path, tmp_path: Path) -> None:
    config = tiny(sharp_dir, steps=3, eval_data=None, eval_max=2, eval_crop=32, soften=0.5)
    export = tmp_path / "weights" / "rt-focuser.safetensors"
    summary = Trainer(config, RunOptions(tmp_path / "run", "cpu", export=export)).run()
    weights = tmp_path / "run" / "rt-focuser.safetensors"
    with safe_open(weights, framework="pt") as f:
        assert f.metadata()["model"] == "rt-focuser" and f.get_tensor("Conv_1x1.weight").dtype == torch.float16
    load_model("rt-focuser", weights)
    for folder, name in ((tmp_path / "run", weights.name), (export.parent, export.name)):
        entry = read_manifest(folder)[name]
        assert entry["model"] == "rt-focuser" and entry["sha256"] == sha256(weights) and entry["steps"] == 3
        assert entry["data"] == [str(sharp_dir)] and [x["step"] for x in entry["losses"]] == [1, 2, 3]
        assert entry["eval"]["psnr"] == summary["final_eval"]["psnr"] and entry["eval"]["frames"] == 2
        assert entry["precision"] == "fp16" and abs(entry["fp16_psnr_loss_db"]) <= 0.05
        assert entry["recipe"]["soften"] == 0.5 and entry["recipe"]["blur"] == config.resolved().blur
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "finished" and run["evals"][-1]["step"] == 3
    assert (tmp_path / "run" / "eval.csv").read_text().splitlines()[0].startswith("step,psnr_input,psnr_output")


def test_eval_takes_a_checkpoint_folder_as_its_weights(sharp_dir: Path, tmp_path: Path, capsys) -> None:
    """A checkpoint scores as the weights the run exports there (its EMA), so any checkpoint
    of a run can be judged on the held-out split."""
    Trainer(tiny(sharp_dir, steps=4), RunOptions(tmp_path, "cpu")).run()
    reports = []
    for weights in (tmp_path / "checkpoints" / "step_0000004", tmp_path / "rt-focuser.safetensors"):
        capsys.readouterr()
        args = ("--model", "rt-focuser", "--weights", weights, "--data", sharp_dir, "--split", "all", "--crop", "32")
        code, err = run_cli("eval", *args, "--max-clips", "2", "--json")
        assert code == 0, err
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0]["weights"] == str(tmp_path / "checkpoints" / "step_0000004")
    assert reports[0]["psnr"]["output"] == pytest.approx(reports[1]["psnr"]["output"], abs=0.01)
    assert reports[0]["psnr"]["output"] != reports[0]["psnr"]["input"]  # trained weights, not the identity


def test_finish_ends_a_run_at_an_earlier_checkpoint(sharp_dir: Path, tmp_path: Path) -> None:
    """`--resume CHECKPOINT --finish` ships that checkpoint's EMA weights with their manifest
    entry, trains no further, and keeps the later checkpoints."""
    Trainer(tiny(sharp_dir, steps=8), RunOptions(tmp_path, "cpu")).run()
    earlier = tmp_path / "checkpoints" / "step_0000004"
    finish = RunOptions(tmp_path, "cpu", resume=earlier, finish=True, export=tmp_path / "w" / "rt-focuser.safetensors")
    summary = Trainer(TrainConfig(model=None, data=None, steps=None), finish).run()
    assert summary["status"] == "finished" and summary["step"] == 4
    assert (tmp_path / "checkpoints" / "step_0000008").is_dir()
    entry = read_manifest(tmp_path / "w")["rt-focuser.safetensors"]
    assert entry["steps"] == 4 and [x["step"] for x in entry["losses"]] == [1, 2, 3, 4]
    shipped = load_file(tmp_path / "w" / "rt-focuser.safetensors")
    ema = checkpoint.exported_weights(earlier)
    assert shipped.keys() == ema.keys() and all(torch.equal(shipped[k], ema[k].half()) for k in shipped)


def test_finish_needs_a_checkpoint(tmp_path: Path) -> None:
    code, err = run_cli("train", "--model", "rt-focuser", "--data", tmp_path, "--finish")
    assert_one_line_error(code, err, 2, "--resume")


def test_evaluates_every_blur_preset_of_the_mix(sharp_dir: Path, tmp_path: Path) -> None:
    config = tiny(sharp_dir, steps=2, eval_data=None, eval_max=2, eval_crop=32, blur="default:0.5,mild:0.3,still:0.2")
    summary = Trainer(config, RunOptions(tmp_path, "cpu")).run()
    header, *rows = (tmp_path / "eval.csv").read_text().splitlines()
    assert header.split(",")[-2:] == ["mild_psnr_gain", "mild_ssim_gain"] and len(rows) == 1
    final = summary["evals"][-1]
    assert final["psnr_gain"] == summary["final_eval"]["psnr"]["gain"]  # the first preset: default
    assert math.isfinite(final["mild_psnr_gain"]) and final["mild_psnr_gain"] != final["psnr_gain"]


@pytest.mark.slow
def test_uhdvd_trains_recurrently_on_every_level(sharp_dir: Path, tmp_path: Path) -> None:
    config = tiny(sharp_dir, model="uhdvd", steps=1, batch=1, crop=128, frames=2, checkpoint_every=100)
    trainer = Trainer(config, RunOptions(tmp_path, "cpu"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    terms = trainer.train_step()
    assert set(terms) == {"loss", "lv1", "lv2", "lv3", "lv4", "tv"}
    weighted = 0.7 * terms["lv1"] + 0.15 * terms["lv2"] + 0.1 * terms["lv3"] + 0.05 * terms["lv4"] + terms["tv"]
    assert torch.isclose(terms["loss"], weighted)
    after = trainer.model.state_dict()
    for part in ("encoder_lv4.layer1.weight", "decoder_lv4.layer24.weight", "encoder_lv1.layer1.weight"):
        assert not torch.equal(before[part], after[part]), part  # every level is trained


def test_cli_errors_are_one_line(sharp_dir: Path, tmp_path: Path) -> None:
    code, err = run_cli("train", "--data", sharp_dir, "--steps", "2", "-o", tmp_path / "x")
    assert_one_line_error(code, err, 2, "--model is required")
    code, err = run_cli("train", "--model", "rt-focuser", "--steps", "2", "-o", tmp_path / "x")
    assert_one_line_error(code, err, 2, "--data is required")
    code, err = run_cli("train", "--model", "rt-focuser", "--data", tmp_path / "none", "--steps", "2", "-o", tmp_path)
    assert_one_line_error(code, err, 1, "is not a folder")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    code, err = run_cli("train", "--model", "rt-focuser", "--data", sharp_dir, "--steps", "2", "-o", tmp_path / "busy")
    assert_one_line_error(code, err, 2, "exists and is not empty")


def student_weights(path: Path) -> Path:
    """msdeblur-s weights that change a frame (at init it is the identity)."""
    torch.manual_seed(3)
    model = create_model("msdeblur-s")
    for scale in model.scales:
        torch.nn.init.normal_(scale.tail.weight, 0.0, 0.01)
    return save_weights(model.state_dict(), path, get_spec("msdeblur-s"))


def test_the_teachers_output_is_the_target(sharp_dir: Path, tmp_path: Path) -> None:
    """With --teacher-mix 1 and the student's own weights as the teacher, the first step's
    target is exactly what the student outputs: the PSNR loss sits at its 80 dB floor. (The
    photos are of low contrast, so that no output leaves [0, 1], where the target is clamped.)"""
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sharp_dir.iterdir():
        cv2.imwrite(str(photos / src.name), (cv2.imread(str(src)) * 0.5 + 64).round())
    weights = student_weights(tmp_path / "s.safetensors")
    config = tiny(photos, model="msdeblur-s", steps=1, init=str(weights), teacher=str(weights), teacher_mix=1.0)
    trainer = Trainer(config, RunOptions(tmp_path / "run", "cpu"))
    assert trainer.train_step()["loss"].item() == pytest.approx(-80.0, abs=0.01)
    plain = Trainer(dataclasses.replace(config, teacher=None), RunOptions(tmp_path / "plain", "cpu"))
    assert plain.train_step()["loss"].item() > -60  # the sharp target alone is far from the output


def test_a_teacher_makes_its_share_of_the_target(tmp_path: Path) -> None:
    teacher = open_teacher(str(student_weights(tmp_path / "t.safetensors")), 0.25, torch.device("cpu"))
    blurry, sharp = torch.rand(2, 1, 3, 24, 32), torch.rand(2, 1, 3, 24, 32)
    with torch.no_grad():
        taught = teacher.model(blurry.flatten(0, 1)).clamp(0, 1).reshape(sharp.shape)
    assert torch.allclose(teacher.target(blurry, sharp), 0.75 * sharp + 0.25 * taught, atol=1e-6)
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_teacher_errors_are_one_line(sharp_dir: Path, tmp_path: Path) -> None:
    args = ["train", "--model", "msdeblur-s", "--data", sharp_dir, "--steps", "1", "-o", tmp_path / "x"]
    code, err = run_cli(*args, "--teacher", "uhdvd")
    assert_one_line_error(code, err, 2, "uhdvd is recurrent")
    code, err = run_cli(*args, "--teacher", tmp_path / "missing.safetensors")
    assert_one_line_error(code, err, 2, "no such model or weights file")
    code, err = run_cli(*args, "--teacher", "msdeblur-s", "--teacher-mix", "0")
    assert_one_line_error(code, err, 2, "--teacher-mix must be in (0, 1]")


def test_train_only_moves_those_parameters_alone(sharp_dir: Path, tmp_path: Path) -> None:
    """--train-only gate: the gate's weights move, the frozen rest stays bit for bit, and
    the frozen parameters get no gradients at all."""
    weights = student_weights(tmp_path / "s.safetensors")
    config = tiny(sharp_dir, model="msdeblur-s", steps=3, init=str(weights), train_only=["gate"])
    trainer = Trainer(config, RunOptions(tmp_path / "run", "cpu"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(3):
        trainer.train_step()
    after = trainer.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert "gate.fc2.weight" in moved and all(k.startswith("gate.") for k in moved)
    assert all(p.grad is None for name, p in trainer.model.named_parameters() if not name.startswith("gate."))
    args = ["train", "--model", "msdeblur-s", "--data", sharp_dir, "--steps", "1", "-o", tmp_path / "x"]
    code, err = run_cli(*args, "--train-only", "gaet")
    assert_one_line_error(code, err, 2, "--train-only gaet: no parameter name starts with it")


def test_a_run_from_random_weights_holds_the_recipes_part_for_its_first_steps(sharp_dir: Path, tmp_path: Path) -> None:
    """msdeblur's recipe holds the frame gate at its initial value while the correction
    starts to learn (from random weights only); after the held steps it trains as the rest."""
    prefix, _ = get_spec("msdeblur-s").recipe.hold
    assert prefix == "gate."
    trainer = Trainer(tiny(sharp_dir, model="msdeblur-s", steps=4), RunOptions(tmp_path / "run", "cpu"))
    trainer.recipe = dataclasses.replace(trainer.recipe, hold=(prefix, 2))
    gate = {k: v.clone() for k, v in trainer.model.gate.state_dict().items()}
    for step in range(4):
        trainer.train_step()
        same = all(torch.equal(v, gate[k]) for k, v in trainer.model.gate.state_dict().items())
        assert same == (step < 2), step
        assert (trainer.model.gate.fc1.weight.grad is None) == (step < 2)
    assert not torch.equal(trainer.model.scales[2].tail.weight, torch.zeros_like(trainer.model.scales[2].tail.weight))
    weights = student_weights(tmp_path / "s.safetensors")
    assert not Trainer(tiny(sharp_dir, model="msdeblur-s", init=str(weights)), RunOptions(tmp_path / "i", "cpu")).held


def test_branches_train_beside_the_convolutions_and_fold_into_every_export(sharp_dir: Path, tmp_path: Path) -> None:
    """--branches: the run starts from the --init weights' function, its branches train, and
    what it exports (and resumes into) is the plain network with the branches folded in."""
    weights = student_weights(tmp_path / "s.safetensors")
    config = tiny(sharp_dir, model="msdeblur-s", steps=4, init=str(weights), branches=True, lr=1e-2)
    trainer = Trainer(config, RunOptions(tmp_path / "run", "cpu"))
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.equal(trainer.export_model()(x), load_model("msdeblur-s", weights)(x))
    trainer.run()
    assert any(".wide." in name for name in trainer.params)
    assert read_manifest(tmp_path / "run")["msdeblur-s.safetensors"]["recipe"]["branches"] is True
    exported = load_file(tmp_path / "run" / "msdeblur-s.safetensors")
    assert exported.keys() == create_model("msdeblur-s").state_dict().keys()
    folded = checkpoint.exported_weights(tmp_path / "run" / "checkpoints" / "step_0000004")  # eval --weights FOLDER
    assert all(torch.equal(folded[k].half(), exported[k]) for k in exported)
    with torch.no_grad():
        assert (trainer.export_model()(x) - load_model("msdeblur-s", weights)(x)).abs().max() > 1e-4
    resumed = Trainer(
        TrainConfig(model=None, data=None, steps=None), RunOptions(tmp_path / "run", "cpu", resume=tmp_path / "run")
    )
    assert resumed.config.branches and resumed.step == 4
    args = ["train", "--model", "rt-focuser", "--data", sharp_dir, "--steps", "1", "--branches", "-o", tmp_path / "x"]
    code, err = run_cli(*args)
    assert_one_line_error(code, err, 2, "--branches")


def test_training_on_photos_needs_no_pyav(sharp_dir: Path, tmp_path: Path) -> None:
    """A lent GPU machine has no PyAV unless its wheel travels along: `train` on photos, with
    its held-out evaluation, runs with `av` impossible to import."""
    blocked = "import sys; sys.modules['av'] = None; from streamdeblur.cli import main; main()"
    args = ["train", "--model", "msdeblur-s", "--data", sharp_dir, "--steps", "2", "--batch", "1", "--crop", "32"]
    done = subprocess.run(
        [sys.executable, "-c", blocked, *map(str, args), "-o", str(tmp_path / "run"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["msdeblur-s.safetensors"]["eval"]["frames"] == 2


def test_cli_trains_and_resume_refuses_other_settings(sharp_dir: Path, tmp_path: Path) -> None:
    args = ["train", "--model", "rt-focuser", "--data", sharp_dir, "--steps", "2", "--batch", "1", "--crop", "32"]
    code, err = run_cli(*args, "--checkpoint-every", "1", "--no-eval", "-o", tmp_path / "run", "-q")
    assert code == 0 and err == ""
    assert get_spec("rt-focuser").weights_file in {p.name for p in (tmp_path / "run").iterdir()}
    code, err = run_cli("train", "--resume", tmp_path / "run", "--lr", "0.5")
    assert_one_line_error(code, err, 2, "started with lr=0.0001")
    code, err = run_cli("train", "--resume", tmp_path / "run" / "checkpoints" / "step_0000002", "--eval-max", "3", "-q")
    assert code == 0, err  # already at its last step: nothing left to do; evaluation settings may change


def test_resume_can_set_a_setting_back_to_its_default(sharp_dir: Path, tmp_path: Path) -> None:
    args = ["train", "--model", "rt-focuser", "--data", sharp_dir, "--steps", "1", "--batch", "1", "--crop", "32"]
    args += ["--seed", "3", "--eval-max", "3", "--keep", "1", "--log-every", "5", "--no-eval", "-o", tmp_path / "run"]
    code, err = run_cli(*args, "-q")
    assert code == 0, err
    code, err = run_cli("train", "--resume", tmp_path / "run", "--seed", "0")  # the default, but not this run's
    assert_one_line_error(code, err, 2, "started with seed=3")
    code, err = run_cli("train", "--resume", tmp_path / "run", "--eval-max", "16", "--keep", "2", "-q")
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (config["eval_max"], config["keep"], config["log_every"], config["seed"]) == (16, 2, 5, 3)


def test_sigterm_saves_a_checkpoint_and_exits_130(sharp_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--model", "rt-focuser", "--data", sharp_dir, "--steps", "10000", "--batch", "1", "--crop", "32"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdeblur",
            "train",
            *map(str, args),
            "--log-every",
            "1",
            "--no-eval",
            "-o",
            str(run),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "log.csv").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    [saved] = (run / "checkpoints").iterdir()
    step = int(saved.name.split("_")[1])
    assert step >= 1 and f"stopped at step {step} (interrupted)" in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


@pytest.mark.skipif(not cpu_has(CPU_NATIVE["bf16"]), reason="needs a CPU with native bf16")
def test_cpu_training_in_bf16_resumes_exactly(sharp_dir: Path, tmp_path: Path) -> None:
    config = dict(model="msdeblur-s", loss="psnr", steps=4, checkpoint_every=2)
    straight = Trainer(tiny(sharp_dir, **config), RunOptions(tmp_path / "a", "cpu", precision="bf16"))
    assert straight.bf16 and straight.model.scales[0].head.weight.is_contiguous(memory_format=torch.channels_last)
    history = straight.run()["history"]
    Trainer(tiny(sharp_dir, **config), RunOptions(tmp_path / "b", "cpu", time_limit=0, precision="bf16")).run()
    resumed = Trainer(
        TrainConfig(model=None, data=None, steps=None),
        RunOptions(tmp_path / "b", "cpu", tmp_path / "b", precision="bf16"),
    ).run()
    assert all(math.isfinite(r["loss"]) for r in history)
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in history]


def test_bf16_training_on_a_cpu_without_it_is_a_one_line_error(sharp_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(device, "cpu_has", lambda flags: False)
    code, err = run_cli(
        "train", "--model", "rt-focuser", "--data", sharp_dir, "--steps", "2", "--precision", "bf16", "-o", tmp_path
    )
    assert_one_line_error(code, err, 2, "no native bf16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["rt-focuser", "uhdvd"])
def test_cuda_training_bf16_channels_last_and_exact_resume(model: str, sharp_dir: Path, tmp_path: Path) -> None:
    config = dict(model=model, steps=6, checkpoint_every=3, crop=128, frames=2, batch=2)
    straight = Trainer(tiny(sharp_dir, **config), RunOptions(tmp_path / "a", "cuda")).run()
    Trainer(tiny(sharp_dir, **config), RunOptions(tmp_path / "b", "cuda", time_limit=0)).run()
    resumed = Trainer(
        TrainConfig(model=None, data=None, steps=None), RunOptions(tmp_path / "b", "cuda", tmp_path / "b")
    )
    assert resumed.step == 3 and resumed.cuda
    summary = resumed.run()
    assert all(math.isfinite(r["loss"]) for r in summary["history"])
    assert [r["loss"] for r in summary["history"]] == [r["loss"] for r in straight["history"]]
    load_model(model, tmp_path / "b" / get_spec(model).weights_file)


def test_soften_makes_the_chosen_scenes_softer_and_leaves_the_rest(sharp_dir: Path) -> None:
    data = [open_dataset(f"sharp:{sharp_dir}")]
    plain, soft = (
        Batches(data, tiny(sharp_dir, blur="mild", soften=share, crop=48, batch=6).resolved(), torch.device("cpu"))
        for share in (0.0, 0.5)
    )
    try:
        (_, a), (_, b) = plain(3), soft(3)  # same step: same photos, crops and camera
    finally:
        plain.close()
        soft.close()
    detail = [(x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3, 4)) for x in (a, b)]
    changed = ~torch.isclose(detail[0], detail[1])
    assert 0 < changed.sum() < 6  # about half the samples
    assert bool((detail[1][changed] < 0.8 * detail[0][changed]).all())


def test_soften_must_be_a_share() -> None:
    with pytest.raises(UsageError, match="--soften must be in"):
        TrainConfig(model="msdeblur-s", data=["x"], steps=1, soften=1.0).resolved()


def test_teacher_views_must_be_a_power_of_two_up_to_eight() -> None:
    with pytest.raises(UsageError, match="--teacher-views must be one of 1, 2, 4, 8"):
        TrainConfig(model="msdeblur-s", data=["x"], steps=1, teacher_views=3).resolved()
