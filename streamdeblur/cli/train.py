"""`streamdeblur train` and `streamdeblur eval`: their options, their commands and what they do.

Both talk to the user on stderr (rich progress, a summary table) and keep stdout for JSON.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from streamdeblur.cli import apply_options
from streamdeblur.cli.views import views_option
from streamdeblur.core.errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from streamdeblur.engine.build import EngineOptions, build_engine
from streamdeblur.engine.device import PRECISIONS, describe_device
from streamdeblur.engine.weights import save_weights
from streamdeblur.models import get_spec, model_names
from streamdeblur.pipeline.denoise import DENOISERS, denoiser
from streamdeblur.train import checkpoint
from streamdeblur.train.config import TrainConfig
from streamdeblur.train.datasets import DEFAULT_AVERAGE, SPLITS, open_dataset
from streamdeblur.train.evaluate import EvalOptions, evaluate
from streamdeblur.train.loop import TRAIN_PRECISIONS, RunOptions, Trainer
from streamdeblur.train.losses import PIXEL_LOSSES
from streamdeblur.train.synth import PRESETS


def _console(quiet: bool) -> Console:
    return Console(stderr=True, highlight=False, quiet=quiet)


def _progress(console: Console, label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold blue]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )


def run_training(config: TrainConfig, options: RunOptions, quiet: bool) -> int:
    """Train (or resume), showing step, loss, steps/s and ETA; returns the exit code."""
    console = _console(quiet)
    trainer = Trainer(config, options)
    config = trainer.config
    console.print(
        f"[bold]train[/]  {config.model} on {describe_device(trainer.device)}, "
        f"batch {config.batch} x {config.frames} frame(s) of {config.crop}px, lr {config.lr:g}, "
        f"loss {config.loss}, {config.steps} steps" + (f", resuming at step {trainer.step}" if trainer.step else "")
    )
    for data in trainer.train_data:
        console.print(f"[bold]data[/]   {escape(data.describe())}")
    for data in trainer.eval_data:
        console.print(f"[bold]eval[/]   {escape(data.describe())}")
    progress = _progress(console, "training")
    task = progress.add_task("train", total=config.steps, completed=trainer.step, status="")

    def on_log(t: Trainer, row: dict[str, float]) -> None:
        status = f"loss {row['loss']:.4g} · {row['steps_per_s']:.2f} steps/s"
        progress.update(task, completed=row["step"], status=status)
        if not console.is_terminal:  # a log file: one line per --log-every instead of a live bar
            console.print(f"step {row['step']}/{config.steps} {status} · {row['elapsed_s']:.0f} s")

    with progress:
        summary = trainer.run(on_log=on_log)
    console.print(_train_summary(summary, options.out))
    return EXIT_INTERRUPTED if summary["status"] == "interrupted" else EXIT_OK


def _train_summary(summary: dict[str, Any], out: Path) -> str:
    status = summary["status"]
    if status != "finished":
        why = "time limit" if status == "time-limit" else "interrupted"
        return (
            f"[yellow]stopped[/] at step {summary['step']} ({why}); continue with `streamdeblur train --resume {out}`"
        )
    line = f"[green]done[/]  {summary['step']} steps → {out}"
    final = summary["final_eval"]
    if final:
        p = final["psnr"]
        line += f"\n      test PSNR {p['input']:.2f} → {p['output']:.2f} dB ({p['gain']:+.2f})"
        line += f" on {final['frames']} frames"
    return line


def resume_out(resume: Path) -> Path:
    """The run folder of `--resume PATH` (a run folder or one of its checkpoints)."""
    folder = checkpoint.latest(resume)
    return folder.parent.parent


def default_out(model: str | None) -> Path:
    """runs/MODEL-TIME (a missing --model is refused by TrainConfig.resolved before anything is written)."""
    return Path("runs") / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_eval(
    model: str,
    weights: str | None,
    data: list[str],
    split: str,
    options: EvalOptions,
    device: str,
    precision: str,
    views: int,
    average: int,
    denoise: str,
    denoise_strength: float,
    as_json: bool,
    output: Path | None,
    quiet: bool,
) -> int:
    """Evaluate and show a table (stderr) and/or JSON (stdout, --json; a file, --output)."""
    if not data:
        raise UsageError("give evaluation data with --data (see `streamdeblur eval --help`)")
    console = _console(quiet or as_json)
    datasets = [open_dataset(spec, split, average) for spec in data]
    with tempfile.TemporaryDirectory() as temp:
        weights_file = _weights_file(model, weights, Path(temp))
        # `model` is a named model, so build_engine has nothing to choose and the frame size is moot
        engine = build_engine(EngineOptions(model, weights_file, device, precision, views), (0, 0))
    runner = engine.runner
    options = dataclasses.replace(options, denoise=denoiser(denoise, denoise_strength, runner.device))
    progress = _progress(console, "evaluating")
    task = progress.add_task("eval", total=None, status="")
    with progress:
        report = evaluate(runner, datasets, options, on_frame=lambda n: progress.update(task, completed=n))
    header = {
        "model": runner.spec.name,
        "weights": weights if weights_file != weights else engine.weights,
        "device": str(runner.device),
        "precision": runner.precision,
        **({"views": views} if views > 1 else {}),
        "split": split,
        "blur": options.blur if any(d.synthetic for d in datasets) else None,
        "seed": options.seed,
    }
    report = {**header, **report}
    for table in eval_tables(report):
        console.print(table)
    text = json.dumps(report, indent=2)
    if output:
        output.write_text(text + "\n")
    if as_json:
        print(text)
    return EXIT_OK


def _weights_file(model: str, weights: str | None, temp: Path) -> str | None:
    """`--weights` as the engine loads it: a training checkpoint folder becomes a weights file
    in `temp` holding the weights the run would export there."""
    if weights is None or not checkpoint.is_checkpoint(Path(weights)):
        return weights
    tensors = checkpoint.exported_weights(Path(weights))
    return str(save_weights(tensors, temp / "checkpoint.safetensors", get_spec(model)))


def eval_tables(report: dict[str, Any]) -> list[Table]:
    """A table per dataset (and one for all of them): metrics down, input/output/gain across."""
    model = f"{report['model']} ({Path(report['weights']).name})"
    blocks = report["datasets"] + ([{"data": "all", **report}] if len(report["datasets"]) > 1 else [])
    tables = []
    for r in blocks:
        table = Table(
            title=f"{model} on {r['data']}, {report['split']} split",
            caption=f"{r['frames']} frames, {r['ms_per_frame']:.1f} ms per frame",
        )
        for column in ("", "input", "output", "gain", "ground truth"):
            table.add_column(column, justify="left" if not column else "right")
        p, s, sh = r["psnr"], r["ssim"], r["sharpness"]
        table.add_row("PSNR (dB)", f"{p['input']:.2f}", f"{p['output']:.2f}", f"{p['gain']:+.2f}", "")
        table.add_row("SSIM", f"{s['input']:.4f}", f"{s['output']:.4f}", f"{s['gain']:+.4f}", "")
        table.add_row("sharpness", f"{sh['input']:.0f}", f"{sh['output']:.0f}", "", f"{sh['ground_truth']:.0f}")
        tables.append(table)
    return tables


# -- click options ----------------------------------------------------------------------------------

BLURS = click.Choice(list(PRESETS))
AVERAGE_HELP = "Frames averaged per blurry frame, odd (average: data)."
DATA_HELP = (
    "repeatable. KIND: gopro, gopro-gamma, reds, dvd, paired (blur/ + sharp/), sharp (images and videos, "
    "blurred on the fly), average (clips, consecutive frames averaged); detected from the folder if left out. "
    "For sharp: and average: PATH may end in a wildcard pattern (sharp:'photos/*.png')."
)


def train_options(fn: Callable) -> Callable:
    """Options of `streamdeblur train`; hyper-parameters left out come from the model's recipe."""
    path = click.Path(path_type=Path)
    return apply_options(
        fn,
        [
            click.option("--model", default=None, type=click.Choice(model_names()), help="Model to train."),
            click.option("--data", multiple=True, metavar="[KIND:]PATH", help="Training data, " + DATA_HELP),
            click.option("--steps", type=click.IntRange(1), default=None, help="Optimizer steps."),
            click.option("--batch", type=click.IntRange(1), default=None, help="Sequences per step [recipe]."),
            click.option("--crop", type=click.IntRange(16), default=None, help="Square crop, pixels [recipe]."),
            click.option("--frames", type=click.IntRange(1), default=None, help="Frames per sequence [recipe]."),
            click.option("--lr", type=click.FloatRange(0, min_open=True), default=None, help="Peak learning rate."),
            click.option("--loss", type=click.Choice(list(PIXEL_LOSSES)), default=None, help="Pixel loss [paper's]."),
            click.option(
                "--blur",
                default=None,
                metavar="PRESET[:W],...",
                help=f"Synthetic blur: a preset ({', '.join(PRESETS)}) or a mix drawn per step, e.g. "
                "default:0.6,mild:0.3,still:0.1 (still: unmoved frames); evaluated per preset, "
                "the first is the run's figure [recipe].",
            ),
            click.option(
                "--soften",
                default=0.0,
                show_default=True,
                type=click.FloatRange(0, 1, max_open=True),
                help="Share of synthetic samples whose scene is soft itself (haze, distance): the source and "
                "its ground truth blurred by a Gaussian before the camera moves, so soft edges are not taken for blur.",
            ),
            click.option(
                "--average", default=DEFAULT_AVERAGE, show_default=True, type=click.IntRange(3), help=AVERAGE_HELP
            ),
            click.option("--seed", default=0, show_default=True, type=int),
            click.option("--ema", default=0.999, show_default=True, type=click.FloatRange(0, 1, max_open=True)),
            click.option(
                "--init",
                default=None,
                metavar="WEIGHTS",
                help="Start from these weights (fine-tune), or a smaller model's that this one grows from.",
            ),
            click.option(
                "--branches",
                is_flag=True,
                help="Train the model's convolutions beside reparameterisation branches (3x3 and 1x1, each "
                "with a BatchNorm), folded into them in every export: the same network and cost at inference.",
            ),
            click.option(
                "--teacher",
                default=None,
                metavar="MODEL|WEIGHTS",
                help="Distil: a model (its installed weights) or weights file whose output makes up "
                "--teacher-mix of each target.",
            ),
            click.option(
                "--teacher-mix",
                default=0.5,
                show_default=True,
                type=float,
                help="The teacher's share of the target (0 to 1).",
            ),
            views_option(
                "--teacher-views",
                help="Average the teacher's output over this many views of each frame (as --views) "
                "(a self-ensemble: with a model's own weights, a teacher better than the model).",
            ),
            click.option(
                "--train-only",
                multiple=True,
                metavar="PREFIX",
                help="Train only the parameters whose names start with PREFIX (e.g. a model's gate); "
                "the rest stay as --init loaded them.",
            ),
            click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1)),
            click.option("--keep", default=2, show_default=True, type=click.IntRange(1), help="Checkpoints kept."),
            click.option("--log-every", default=10, show_default=True, type=click.IntRange(1)),
            click.option("--eval-data", multiple=True, metavar="[KIND:]PATH", help="Test data [--data's test split]."),
            click.option("--no-eval", is_flag=True, help="No evaluation."),
            click.option("--eval-every", default=0, type=click.IntRange(0), help="Also evaluate every N steps."),
            click.option("--eval-max", default=16, show_default=True, type=click.IntRange(1), help="Clips per set."),
            click.option("--eval-crop", default=None, type=click.IntRange(16), help="Evaluate centre crops."),
            click.option("-o", "--out", type=path, default=None, help="Run folder [runs/MODEL-TIME]."),
            click.option("--resume", type=click.Path(exists=True, path_type=Path), help="Continue this run."),
            click.option(
                "--finish",
                is_flag=True,
                help="With --resume CHECKPOINT: end the run there (its weights and manifest), no more steps.",
            ),
            click.option("--export", type=path, default=None, help="Also write the weights (and manifest) here."),
            click.option("--device", default="auto", show_default=True),
            click.option(
                "--precision",
                default="auto",
                show_default=True,
                type=click.Choice(TRAIN_PRECISIONS),
                help="Forward-pass autocast: auto is bf16 on CUDA, fp32 on a CPU (bf16 there is faster where native).",
            ),
            click.option("--time-limit", type=click.FloatRange(0), help="Seconds; stop at the last checkpoint in it."),
            click.option("-q", "--quiet", is_flag=True, help="Only errors."),
            click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
        ],
    )


def train_from_options(o: dict[str, Any]) -> int:
    out = o["out"] or (resume_out(o["resume"]) if o["resume"] else default_out(o["model"]))
    config = TrainConfig(
        model=o["model"],
        data=list(o["data"]) or None,
        steps=o["steps"],
        eval_data=[] if o["no_eval"] else (list(o["eval_data"]) or None),
        **{k: o[k] for k in ("batch", "crop", "frames", "lr", "loss", "blur", "soften", "average", "seed", "ema")},
        **{k: o[k] for k in ("init", "branches", "teacher", "teacher_mix", "teacher_views")},
        train_only=list(o["train_only"]) or None,
        **{k: o[k] for k in ("checkpoint_every", "keep", "log_every", "eval_every", "eval_max", "eval_crop")},
    )
    if o["finish"] and not o["resume"]:
        raise UsageError("--finish ends a run at a checkpoint: name it with --resume")
    options = RunOptions(
        out,
        o["device"],
        o["resume"],
        o["time_limit"],
        o["export"],
        o["finish"],
        given=_given_settings(),
        precision=o["precision"],
    )
    return run_training(config, options, o["quiet"])


def _given_settings() -> frozenset[str] | None:
    """The TrainConfig fields named on the command line (so `--resume RUN --eval-max 16` sets
    16 even where it is the default); None outside a click command."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    given = lambda name: ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)  # noqa: E731
    fields = {f.name for f in dataclasses.fields(TrainConfig) if given(f.name)}
    return frozenset(fields | ({"eval_data"} if given("no_eval") else set()))


def eval_options(fn: Callable) -> Callable:
    """Options of `streamdeblur eval`."""
    return apply_options(
        fn,
        [
            click.option("--model", required=True, type=click.Choice(model_names())),
            click.option(
                "--weights",
                default=None,
                metavar="PATH",
                help="Weights, or a training checkpoint folder (its EMA weights) [the default weights].",
            ),
            click.option("--data", multiple=True, metavar="[KIND:]PATH", help="Test data, " + DATA_HELP),
            click.option("--split", default="test", show_default=True, type=click.Choice(list(SPLITS))),
            click.option("--blur", default="default", show_default=True, type=BLURS, help="For sharp-only data."),
            click.option("--seed", default=0, show_default=True, type=int, help="Seed of the synthetic blur."),
            click.option("--frames", default=1, show_default=True, type=click.IntRange(1), help="Frames per still."),
            click.option(
                "--average", default=DEFAULT_AVERAGE, show_default=True, type=click.IntRange(3), help=AVERAGE_HELP
            ),
            click.option("--crop", default=None, type=click.IntRange(16), help="Centre crops of this size."),
            click.option(
                "--denoise",
                default="none",
                show_default=True,
                type=click.Choice(["none", *DENOISERS]),
                help="Denoise the blurry input before the model, as a run's --denoise does.",
            ),
            click.option("--denoise-strength", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True)),
            click.option("--max-clips", default=None, type=click.IntRange(1), help="Clips per dataset."),
            click.option("--max-frames", default=None, type=click.IntRange(1), help="Frames per clip."),
            click.option("--device", default="auto", show_default=True),
            click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS)),
            views_option(),
            click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout, no table."),
            click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON."),
            click.option("-q", "--quiet", is_flag=True, help="Only errors."),
            click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
        ],
    )


def eval_from_options(o: dict[str, Any]) -> int:
    options = EvalOptions(**{k: o[k] for k in ("blur", "seed", "frames", "crop", "max_clips", "max_frames")})
    return run_eval(
        o["model"], o["weights"], list(o["data"]), o["split"], options, o["device"], o["precision"], o["views"],
        o["average"], o["denoise"], o["denoise_strength"], o["as_json"], o["output"], o["quiet"],
    )  # fmt: skip


@click.command("train")
@train_options
def train_command(**options: Any) -> int:
    """Train a model on your data; writes checkpoints, logs and .safetensors weights to --out."""
    return train_from_options(options)


@click.command("eval")
@eval_options
def eval_command(**options: Any) -> int:
    """PSNR, SSIM and sharpness of a model's output against ground truth, with the input's."""
    return eval_from_options(options)
