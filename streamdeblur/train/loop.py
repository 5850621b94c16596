"""`streamdeblur train`: the training loop.

Every batch is a pure function of (seed, step): the step's numpy and torch generators pick
the data, crops, flips and synthetic blur. Together with checkpoints that are
synchronisation points (checkpoint.py), a run stopped at any checkpoint and resumed is
bit-identical to one that never stopped. Batches are prepared one step ahead on a
background thread (file reading, cropping), and blurred on the training device, so data
never holds the GPU up. On CUDA (and with `--precision bf16` on a CPU that has native bf16)
the forward pass runs under bf16 autocast with channels_last maps; weights, optimizer and
loss stay float32.

A run folder holds `checkpoints/`, `log.csv` (one row per --log-every steps), `eval.csv`,
`run.json` (settings, history, evaluations) and at the end `<model>.safetensors` with its
`manifest.json` entry: the EMA weights in fp16, or in fp32 where fp16 would lose more than
FP16_TOLERANCE_DB (0.05 dB) of PSNR on the test split (the entry's `precision` and
`fp16_psnr_loss_db`; without test data, fp16 unchecked).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from streamdeblur.core.errors import InputError, UsageError
from streamdeblur.engine import weights
from streamdeblur.engine.build import EngineOptions, build_engine
from streamdeblur.engine.device import resolve_device, resolve_precision
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.models import create_model, get_spec
from streamdeblur.train import checkpoint
from streamdeblur.train.batches import Batches
from streamdeblur.train.config import TrainConfig
from streamdeblur.train.datasets import Dataset, open_dataset
from streamdeblur.train.evaluate import EvalOptions, EvalSet, evaluate, prepare
from streamdeblur.train.losses import PIXEL_LOSSES
from streamdeblur.train.recipes import batch_loss
from streamdeblur.train.synth import blur_mix
from streamdeblur.train.teacher import Teacher, open_teacher

# Settings a resumed run may change: they do not touch what is trained. All others must stay.
CHANGEABLE = ("keep", "log_every", "eval_data", "eval_every", "eval_max", "eval_crop")


FP16_TOLERANCE_DB = 0.05  # held-out PSNR that fp16 weights may lose against fp32 (else fp32 ships)
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # --precision of `train`: the forward pass's autocast
EVAL_CACHE_BYTES = 256 * 2**20  # test frames up to this size are read, blurred and measured once per run


@dataclass
class RunOptions:
    """How this invocation runs; none of it changes what is learned (precision: only its rounding)."""

    out: Path
    device: str = "auto"
    resume: Path | None = None
    time_limit: float | None = None  # seconds: stop at the last checkpoint that fits
    export: Path | None = None
    # With `resume`: end the run at that checkpoint (evaluate, write its weights and manifest
    # entry) without training further or discarding later checkpoints: a run's best
    # checkpoint on the held-out split need not be its last.
    finish: bool = False
    command: str = field(default_factory=lambda: shlex.join(["streamdeblur", *sys.argv[1:]]))
    # The TrainConfig fields this invocation named (the command line), for --resume; None:
    # those that differ from TrainConfig's defaults (a setting cannot then be reset to its default).
    given: frozenset[str] | None = None
    # one of TRAIN_PRECISIONS, the forward pass's autocast: auto is bf16 on CUDA and fp32 on a
    # CPU; bf16 on a CPU with avx512_bf16 trains S at about 1.3 times fp32's steps per second
    # (docs/training.md, run 30)
    precision: str = "auto"


def lr_at(step: int, config: TrainConfig, lr_min: float) -> float:
    """Cosine from `lr` to `lr_min` over the run (RT-Focuser's schedule)."""
    progress = min(step / max(config.steps, 1), 1.0)
    return lr_min + 0.5 * (config.lr - lr_min) * (1 + math.cos(math.pi * progress))


class Trainer:
    """One training run: model, EMA, optimizer, data, logs and checkpoints in `options.out`."""

    def __init__(self, config: TrainConfig, options: RunOptions) -> None:
        self.options = options
        self.out = options.out
        self.device = resolve_device(options.device)
        resume_from = checkpoint.latest(options.resume) if options.resume else None
        tensors, state = checkpoint.load(resume_from) if resume_from else ({}, {})
        if state:
            config = _merge(TrainConfig(**state["config"]), config, options.given)
        elif self.out.exists() and any(self.out.iterdir()):
            raise UsageError(f"--out {self.out} exists and is not empty (use --resume {self.out} to continue it)")
        self.config = config = config.resolved()
        self.spec = get_spec(config.model)
        self.recipe = self.spec.recipe
        self.cuda = self.device.type == "cuda"
        self.bf16 = _autocast_bf16(options.precision, self.device)
        self.channels_last = self.bf16 and self.recipe.channels_last
        if self.cuda:  # every step has the same shapes: let cuDNN time its kernels once and keep the fastest
            torch.backends.cudnn.benchmark = True
        self.train_data = [open_dataset(spec, "train", config.average) for spec in config.data]
        self.eval_data = self._open_eval_data()
        # one evaluation per blur preset of the mix (`still` aside): the first is the run's
        # figure; the others show whether nearly sharp frames are being damaged on the way
        self.eval_options = [
            EvalOptions(blur=name, seed=config.seed, crop=config.eval_crop, max_clips=config.eval_max)
            for name, _ in blur_mix(config.blur)
            if name != "still"
        ]
        self._eval_sets: dict[str, EvalSet | list[Dataset]] = {}  # prepared at the first evaluation
        self.batches = Batches(self.train_data, config, self.device)
        # The global generators only initialise the model: batches, blur and evaluation draw from
        # their own generators and no layer is random, so checkpoints hold no RNG state.
        torch.manual_seed(config.seed)
        # --init weights start a run (a smaller model's are grown into this one where its spec
        # can); a resumed one gets all its weights from the checkpoint
        fresh = not config.init or resume_from
        start = create_model(config.model) if fresh else weights.load_grown(config.model, config.init)
        if config.branches:
            checkpoint.branch(start)
        self.model = start.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.params = {name for name, _ in self.model.named_parameters()}
        self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()} if config.ema else None
        self.trained = _trainable(self.model, config.train_only)
        self.held = _held(self.model, self.recipe.hold if not config.init else None)
        # fused: one kernel for all tensors (per-tensor Adam costs more than RT-Focuser's step on a CPU)
        self.optimizer = torch.optim.Adam(self.trained, lr=config.lr, fused=True)
        self.pixel = PIXEL_LOSSES[config.loss]
        self.teacher: Teacher | None = None  # distillation (--teacher)
        if config.teacher:
            self.teacher = open_teacher(
                config.teacher, config.teacher_mix, self.device, self.channels_last, config.teacher_views
            )
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.evals: list[dict[str, Any]] = []
        if resume_from:
            self._restore(tensors, state)

    def _open_eval_data(self) -> list[Dataset]:
        """The test split to evaluate on: --eval-data, or the training data's own test split
        where it has one (no evaluation where it has none and none was asked for)."""
        specs = self.config.eval_data
        if specs is not None:
            return [open_dataset(spec, "test", self.config.average) for spec in specs]
        found = []
        for spec in self.config.data:
            try:
                found.append(open_dataset(spec, "test", self.config.average))
            except InputError:
                continue
        return found

    # -- state ---------------------------------------------------------------------------------

    def _moments(self) -> dict[str, dict[str, torch.Tensor]]:
        names = {param: name for name, param in self.model.named_parameters()}
        moments: dict[str, dict[str, torch.Tensor]] = {"exp_avg": {}, "exp_avg_sq": {}}
        for param, state in self.optimizer.state.items():
            for kind in moments:
                moments[kind][names[param]] = state[kind]
        return moments

    def _load(self, model: dict, ema: dict | None, moments: dict, adam_step: float | None) -> None:
        """Put (settled or loaded) tensors into the live model, EMA and optimizer."""
        self.model.load_state_dict(model)
        if ema is not None:
            self.ema = {k: v.to(self.device) for k, v in ema.items()}
        for name, param in self.model.named_parameters():
            if name in moments.get("exp_avg", {}):
                # in the parameter's memory format: the CPU's fused Adam pairs elements by
                # memory order, so NCHW moments of a channels_last weight would be scrambled
                self.optimizer.state[param] = {
                    "step": torch.tensor(adam_step, dtype=torch.float32, device=param.device),
                    **{kind: torch.empty_like(param).copy_(moments[kind][name]) for kind in ("exp_avg", "exp_avg_sq")},
                }

    def _restore(self, tensors: dict, state: dict) -> None:
        self._load(*checkpoint.unpack(tensors), state["adam_step"])
        self.step = state["step"]
        self.history = state["history"]
        self.evals = state["evals"]
        if self.options.finish:
            return
        checkpoint.discard_after(self.out, self.step)  # an older checkpoint: the newer ones are abandoned
        _truncate_csv(self.out / "log.csv", self.step)
        _truncate_csv(self.out / "eval.csv", self.step)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint and continue from exactly what it holds (checkpoint.py)."""
        adam_step = next((float(s["step"]) for s in self.optimizer.state.values()), None)
        packed = checkpoint.pack(self.model.state_dict(), self.ema, self._moments(), self.params)
        state = {
            "step": self.step,
            "adam_step": adam_step,
            "config": dataclasses.asdict(self.config),
            "history": self.history,
            "evals": self.evals,
        }
        folder = checkpoint.save(checkpoint.checkpoint_dir(self.out, self.step), packed, state, self.config.keep)
        self._load(*checkpoint.settle(packed), adam_step)
        return folder

    # -- training -------------------------------------------------------------------------------

    def _update_ema(self) -> None:
        """EMA of the weights and of the BatchNorm statistics (decay warming up as
        (1+t)/(10+t)); counters are copied. Statistics copied from the live model instead
        would follow its last few batches, and the exported model would evaluate noisily."""
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        live = self.model.state_dict()
        floats = [name for name, value in live.items() if value.is_floating_point()]
        with torch.no_grad():
            torch._foreach_lerp_([self.ema[k] for k in floats], [live[k] for k in floats], 1 - decay)
            for name, value in live.items():
                if not value.is_floating_point():
                    self.ema[name].copy_(value)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimizer step; returns the loss and its terms (detached, on the device)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.config, self.recipe.lr_min)
        blurry, sharp = self.batches(self.step)
        self.model.train()
        for param in self.held:  # no gradient: Adam leaves a parameter without one as it is
            param.requires_grad_(self.step >= self.recipe.hold[1])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.teacher:
                sharp = self.teacher.target(blurry, sharp, self.channels_last)
            loss, parts = batch_loss(
                self.model, self.spec, self.recipe, blurry, sharp, self.pixel, channels_last=self.channels_last
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.trained, self.recipe.clip_grad)
        self.optimizer.step()
        self.step += 1
        if self.ema is not None:
            self._update_ema()
        return {"loss": loss.detach(), **parts}

    def export_model(self) -> torch.nn.Module:
        """The weights a user gets: the EMA (if kept), as an eval-mode CPU model."""
        return checkpoint.plain_model(self.config.model, self.ema or self.model.state_dict(), self.config.branches)

    def _runner(self, model: torch.nn.Module, precision: str) -> ModelRunner:
        options = EngineOptions(self.config.model, device=str(self.device), precision=precision)
        return build_engine(options, (0, 0), model=model).runner

    def _evaluate(self, runner: ModelRunner, options: EvalOptions) -> dict[str, Any]:
        """Evaluate on the test split blurred as `options` says. The frames, their blur and
        their input-side figures do not depend on the model: they are prepared once (if they
        fit in their share of EVAL_CACHE_BYTES, which all presets' caches share; else read again
        each time) for all of the run's evaluations."""
        if options.blur not in self._eval_sets:
            prepared = prepare(self.eval_data, options, EVAL_CACHE_BYTES // len(self.eval_options))
            self._eval_sets[options.blur] = prepared if prepared is not None else self.eval_data
        return evaluate(runner, self._eval_sets[options.blur], options)

    def run_eval(self) -> dict[str, Any]:
        """Evaluate the exported weights on the test split, once per blur preset of the mix;
        logged to eval.csv and run.json. Returns the first preset's report."""
        runner = self._runner(self.export_model(), resolve_precision("auto", self.device))
        report, *others = (self._evaluate(runner, options) for options in self.eval_options)
        entry = {
            "step": self.step,
            "psnr_input": report["psnr"]["input"],
            "psnr_output": report["psnr"]["output"],
            "psnr_gain": report["psnr"]["gain"],
            "ssim_input": report["ssim"]["input"],
            "ssim_output": report["ssim"]["output"],
            "frames": report["frames"],
        }
        for options, other in zip(self.eval_options[1:], others, strict=True):
            entry[f"{options.blur}_psnr_gain"] = other["psnr"]["gain"]
            entry[f"{options.blur}_ssim_gain"] = other["ssim"]["gain"]
        self.evals.append(entry)
        _append_csv(self.out / "eval.csv", entry)
        return report

    def run(self, on_log: Callable[[Trainer, dict[str, float]], None] | None = None) -> dict[str, Any]:
        """Train to `config.steps`, or stop early; returns the run summary (also in run.json).

        With a time limit the run stops at the last checkpoint after which another
        checkpoint interval would not fit (so its resumption is exact); Ctrl-C stops at once
        and saves where it is.
        """
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        start, start_step = time.monotonic(), self.step
        sums: dict[str, torch.Tensor] = {}
        count, last_log = 0, start
        status, final_eval = "finished", None
        try:
            if self.step == 0 and config.eval_every and self.eval_data and not self.options.finish:
                self.run_eval()
                last_log = time.monotonic()
            while self.step < config.steps and not self.options.finish:
                for key, value in self.train_step().items():
                    sums[key] = sums.get(key, 0) + value
                count += 1
                if self.step % config.log_every == 0 or self.step == config.steps:
                    now = time.monotonic()
                    row = {"step": self.step, **{k: float(v) / count for k, v in sums.items()}}
                    row["lr"] = lr_at(self.step - 1, config, self.recipe.lr_min)
                    row["steps_per_s"] = count / (now - last_log)
                    row["elapsed_s"] = now - start
                    self.history.append(row)
                    _append_csv(self.out / "log.csv", row)
                    sums, count, last_log = {}, 0, now
                    if on_log:
                        on_log(self, row)
                if self.step >= config.steps:
                    break
                if config.eval_every and self.step % config.eval_every == 0 and self.eval_data:
                    self.run_eval()
                if self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                    if self._out_of_time(start, start_step):
                        status = "time-limit"
                        break
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            self.batches.close()
        if status != "time-limit" and (self.step > start_step or status == "interrupted"):
            self.save_checkpoint()
        if status == "finished":
            half, fp16_delta = True, None
            if self.eval_data:
                final_eval = self.run_eval()
                half, fp16_delta = self.fp16_check(final_eval)
            self.write_weights(final_eval, half, fp16_delta)
        summary = {
            "status": status,
            "step": self.step,
            "config": dataclasses.asdict(config),
            "command": self.options.command,
            "history": self.history,
            "evals": self.evals,
            "final_eval": final_eval,
        }
        (self.out / "run.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _out_of_time(self, start: float, start_step: int) -> bool:
        """Would another checkpoint interval overrun --time-limit (at this run's pace)?"""
        limit = self.options.time_limit
        if limit is None:
            return False
        elapsed = time.monotonic() - start
        per_step = elapsed / max(self.step - start_step, 1)
        return elapsed + per_step * self.config.checkpoint_every > limit

    def fp16_check(self, final_eval: dict[str, Any]) -> tuple[bool, float]:
        """Ship fp16 weights only if they lose at most FP16_TOLERANCE_DB of held-out PSNR.

        Both sides are evaluated with fp32 arithmetic, so only the storage precision differs.
        Returns (write fp16, PSNR of fp32 weights minus PSNR of fp16-rounded weights).
        """
        on_fp32 = resolve_precision("auto", self.device) == "fp32"
        first = self.eval_options[0]
        full = final_eval if on_fp32 else self._evaluate(self._runner(self.export_model(), "fp32"), first)
        rounded = self._runner(self.export_model().half().float(), "fp32")
        delta = full["psnr"]["output"] - self._evaluate(rounded, first)["psnr"]["output"]
        return delta <= FP16_TOLERANCE_DB, delta  # fp16 weights that score better are kept too

    def write_weights(
        self, final_eval: dict[str, Any] | None, half: bool = True, fp16_delta: float | None = None
    ) -> Path:
        """`<out>/<model>.safetensors` (EMA weights, fp16 unless that costs PSNR) and its
        manifest entry; --export too."""
        path = self.out / self.spec.weights_file
        model = self.export_model()
        meta = {"steps": str(self.step), "data": ",".join(self.config.data)}
        weights.save_weights(model.state_dict(), path, self.spec, metadata=meta, half=half)
        entry = self.manifest_entry(final_eval)
        entry["precision"] = "fp16" if half else "fp32"
        if fp16_delta is not None:
            entry["fp16_psnr_loss_db"] = round(fp16_delta, 4)
        weights.update_manifest(self.out, path.name, entry)
        if self.options.export:
            export = self.options.export
            export.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, export)
            weights.update_manifest(export.parent, export.name, entry)
        return path

    def manifest_entry(self, final_eval: dict[str, Any] | None) -> dict[str, Any]:
        config = self.config
        losses = [{"step": r["step"], "loss": r["loss"]} for r in self.history]
        stride = max(1, len(losses) // 20)
        entry: dict[str, Any] = {
            "model": config.model,
            "origin": "trained",
            "data": config.data,
            "steps": self.step,
            "recipe": {
                "batch": config.batch,
                "crop": config.crop,
                "frames": config.frames,
                "lr": config.lr,
                "lr_min": self.recipe.lr_min,
                "clip_grad": self.recipe.clip_grad,
                "schedule": "cosine",
                "loss": config.loss,
                "blur": config.blur,
                **({"soften": config.soften} if config.soften else {}),
                "ema": config.ema,
                "seed": config.seed,
                "init": config.init,
                **({"branches": True} if config.branches else {}),
                **(
                    {
                        "teacher": config.teacher,
                        "teacher_mix": config.teacher_mix,
                        "teacher_views": config.teacher_views,
                    }
                    if config.teacher
                    else {}
                ),
                **({"train_only": config.train_only} if config.train_only else {}),
                **({"hold": list(self.recipe.hold)} if self.held else {}),
            },
            "losses": losses[::stride] + ([losses[-1]] if losses and (len(losses) - 1) % stride else []),
            "command": self.options.command,
        }
        if final_eval is not None:
            entry["eval"] = {
                "data": [d["data"] for d in final_eval["datasets"]],
                "split": "test",
                "blur": self.eval_options[0].blur,
                "frames": final_eval["frames"],
                "psnr": final_eval["psnr"],
                "ssim": final_eval["ssim"],
            }
        return entry


def _autocast_bf16(precision: str, device: torch.device) -> bool:
    """Whether the forward pass runs under bf16 autocast (weights, optimizer and loss stay
    fp32): `auto` on CUDA; `bf16` wherever the device has native bf16 (else a one-line error)."""
    if precision not in TRAIN_PRECISIONS:
        raise UsageError(f"unknown training precision {precision!r} (use {', '.join(TRAIN_PRECISIONS)})")
    if precision == "auto":
        return device.type == "cuda"
    return precision == "bf16" and resolve_precision("bf16", device) == "bf16"


def _trainable(model: torch.nn.Module, prefixes: list[str] | None) -> list[torch.nn.Parameter]:
    """The parameters to train, all or those under `prefixes`; the others are frozen
    (no gradients: a frozen body's activations keep no graph, so a step costs little more
    than the forward pass)."""
    if not prefixes:
        return list(model.parameters())
    named = dict(model.named_parameters())
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in named):
            tops = sorted({name.split(".")[0] for name in named})
            parts = ", ".join(tops)
            raise UsageError(f"--train-only {prefix}: no parameter name starts with it (this model's parts: {parts})")
    for name, param in named.items():
        param.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))
    return [param for param in named.values() if param.requires_grad]


def _held(model: torch.nn.Module, hold: tuple[str, int] | None) -> list[torch.nn.Parameter]:
    """The trained parameters that the recipe's `hold` keeps at their initial values for its
    first steps (none for a run that starts from weights: `hold` is None)."""
    if hold is None:
        return []
    return [param for name, param in model.named_parameters() if name.startswith(hold[0]) and param.requires_grad]


def _merge(stored: TrainConfig, given: TrainConfig, named: frozenset[str] | None = None) -> TrainConfig:
    """The stored settings of a resumed run, with the CHANGEABLE ones that were given;
    any other setting given must agree with the stored one.

    `named` lists the settings given (a value equal to the default included); None: those
    of `given` that are set and differ from the defaults.
    """
    changes = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(given, f.name)
        if named is not None:
            if f.name not in named:
                continue
        elif value is None or value == f.default:
            continue
        if value == getattr(stored, f.name):
            continue
        if f.name not in CHANGEABLE:
            raise UsageError(
                f"--resume: this run was started with {f.name}={getattr(stored, f.name)!r}; "
                f"{value!r} would not continue the same run (leave it out to keep it)"
            )
        changes[f.name] = value
    return dataclasses.replace(stored, **changes)


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after `step` (a run that went on past its last checkpoint)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= step]
    path.write_text("".join(kept))
