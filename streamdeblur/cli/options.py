"""Options several commands share: the engine and processing options of file, live and batch,
and their output options; `config_from` turns them into a `RunConfig`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import click

from streamdeblur.cli import apply_options
from streamdeblur.cli.views import views_option
from streamdeblur.engine.device import PRECISIONS, set_threads
from streamdeblur.io.sinks import DEFAULT_CRF, EncodeOptions
from streamdeblur.models import model_names
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.denoise import DENOISERS
from streamdeblur.pipeline.stats import check_report_path


def parse_threshold(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    """`auto` → None, else a number >= 0 (`nan` would silently mark every frame sharp)."""
    if value == "auto":
        return None
    try:
        threshold = float(value)
    except ValueError:
        raise click.BadParameter("use 'auto' or a number (Laplacian variance at 480 px width)") from None
    if math.isnan(threshold) or threshold < 0:
        raise click.BadParameter("must be a number >= 0")
    return threshold


def engine_options(fn: Callable) -> Callable:
    """Model and processing options shared by the file, live and batch commands."""
    options = [
        click.option(
            "--model",
            default="auto",
            show_default=True,
            type=click.Choice(["auto", *model_names()]),
            help="Model; auto picks the best one this hardware can run.",
        ),
        click.option(
            "--weights",
            default=None,
            metavar="PATH",
            help="Weights: our .safetensors or an official checkpoint the model reads "
            "(see `streamdeblur models`; default: weights/<model>.safetensors).",
        ),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option(
            "--threads",
            default=None,
            type=click.IntRange(1),
            help="CPU threads for the model and filters [torch's default: one per core].",
        ),
        click.option(
            "--precision",
            default="auto",
            show_default=True,
            type=click.Choice(PRECISIONS),
            help="auto: fp16 on CUDA, fp32 on CPU.",
        ),
        views_option(),
        click.option("--selective", is_flag=True, help="Process only blurry frames; sharp ones pass through."),
        click.option(
            "--blur-threshold",
            default="auto",
            show_default=True,
            callback=parse_threshold,
            help="With --selective: frames whose blur score is below this number are processed; "
            "auto adapts to the clip (with hysteresis, so the choice does not flicker).",
        ),
        click.option(
            "--denoise",
            default="none",
            show_default=True,
            type=click.Choice(["none", *DENOISERS]),
            help="Denoise before the model (sensor noise otherwise gets sharpened): bilateral (fast), "
            "nlm (non-local means, slow, strongest), tv (total variation).",
        ),
        click.option(
            "--denoise-strength",
            default=1.0,
            show_default=True,
            type=click.FloatRange(0, min_open=True),
            help="Scales the denoiser's smoothing (2: twice as hard).",
        ),
    ]
    return apply_options(fn, options)


def output_options(fn: Callable) -> Callable:
    """Output, report and verbosity options shared by the commands that write files."""
    options = [
        click.option(
            "--report",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write a JSON run report (timings, per-frame blur scores).",
        ),
        click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        click.option(
            "--crf",
            type=click.IntRange(0, 63),
            default=DEFAULT_CRF,
            show_default=True,
            help="Encoder quality (lower is better).",
        ),
        click.option(
            "--codec",
            default=None,
            help="Video encoder (FFmpeg name); default: by container, libx264 (H.264), for .webm VP9 (AV1 for 10-bit).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress or summary, only errors."),
        click.option("--debug", is_flag=True, help="Show tracebacks for errors."),
    ]
    return apply_options(fn, options)


def config_from(options: dict[str, Any]) -> RunConfig:
    if options.get("report"):
        check_report_path(options["report"])
    if options.get("threads"):
        set_threads(options["threads"])
    return RunConfig(
        model=options["model"],
        weights=options["weights"],
        device=options["device"],
        precision=options["precision"],
        views=options["views"],
        selective=options["selective"],
        blur_threshold=options["blur_threshold"],
        denoise=options["denoise"],
        denoise_strength=options["denoise_strength"],
        overwrite=options["overwrite"],
        encode=EncodeOptions(codec=options["codec"], crf=options["crf"]),
        record_frames=options.get("report") is not None,
    )
