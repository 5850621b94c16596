"""Command line: `streamdeblur INPUT -o OUTPUT [options]` plus `models` and `bench`.

The bare form is the main job: a click group whose default command is `run`. Every failure
a user can cause ends with one line on stderr and a documented exit code (0 done, 1 failed,
2 usage, 3 partial, 130 interrupted); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from streamdeblur import __version__
from streamdeblur.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, StreamdeblurError, first_line
from streamdeblur.engine.device import PRECISIONS, set_threads, tune_allocator
from streamdeblur.file import run_file
from streamdeblur.io.sinks import DEFAULT_CRF, EncodeOptions
from streamdeblur.models import list_models, model_names
from streamdeblur.option_groups import apply_options
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.denoise import DENOISERS
from streamdeblur.pipeline.stats import check_report_path, write_report
from streamdeblur.train.commands import eval_from_options, eval_options, train_from_options, train_options

PROG = "streamdeblur"


class DefaultGroup(click.Group):
    """A group that runs `run` when the first argument is not a subcommand.

    So `streamdeblur in.mp4 -o out.mp4` is the main job and `streamdeblur models` a
    subcommand; a file that happens to be named like a subcommand works as `streamdeblur run NAME`.
    """

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


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
        selective=options["selective"],
        blur_threshold=options["blur_threshold"],
        denoise=options["denoise"],
        denoise_strength=options["denoise_strength"],
        overwrite=options["overwrite"],
        encode=EncodeOptions(codec=options["codec"], crf=options["crf"]),
        record_frames=options.get("report") is not None,
    )


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """Deblur videos, images and image sequences; live streams and folders too.

    \b
      streamdeblur INPUT -o OUTPUT [options]   the main job (see `streamdeblur run --help`)
      streamdeblur batch IN_DIR -o OUT_DIR     every video and image in a folder tree
      streamdeblur live SOURCE [-o OUTPUT]     a camera or stream (see `streamdeblur live --help`)
      streamdeblur models                      available models
      streamdeblur bench --model M --size WxH  time a model
      streamdeblur train / eval                train a model, measure it
      streamdeblur import-weights SRC          official checkpoint → .safetensors
      streamdeblur compare IN OUT -o SBS.png   look at the difference
    """


@cli.command("run")
@click.argument("input", metavar="INPUT")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUTPUT",
    help="Video file, image, or printf pattern (follows INPUT's kind).",
)
@engine_options
@output_options
def run_command(input: str, output: str, **options: Any) -> int:
    """Deblur INPUT (a video, an image, or an image sequence: 'frames/%04d.png' or a quoted glob)."""
    from streamdeblur.display import RunDisplay

    display = RunDisplay(quiet=options["quiet"])
    display.begin()
    try:
        result = run_file(input, output, config_from(options), on_start=display.start, on_tick=display.tick)
    except BaseException:
        display.stop()  # the error line must not land inside the progress display
        raise
    if options["report"]:
        write_report(options["report"], result.report().to_json())
    display.summary(result.stats, output, result.interrupted)
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


@cli.command("batch")
@click.argument("in_dir", metavar="IN_DIR", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, metavar="OUT_DIR", type=click.Path(path_type=Path))
@click.option("--suffix", default="", help="Added to each output's name: clip.mp4 → clip_sharp.mp4 with _sharp.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    metavar="EXT",
    help="Output format for images (png, jpg, ...) and/or videos (mp4, mkv, mov, webm); default: the input's.",
)
@click.option(
    "--jobs",
    default=None,
    type=click.IntRange(1),
    help="Files in flight per model instance (default: 2 per GPU, 1 on CPU).",
)
@click.option(
    "--manifest", type=click.Path(dir_okay=False, path_type=Path), help="JSON Lines progress log; speeds up reruns."
)
@click.option("--ray", "ray_address", metavar="ADDRESS", help="Run on a Ray cluster ('local': start one here).")
@engine_options
@output_options
def batch_command(in_dir: Path, out_dir: Path, **options: Any) -> int:
    """Deblur every video and image under IN_DIR into OUT_DIR, mirroring the tree.

    Reruns skip finished outputs and redo unfinished ones. Exit code 3 if some inputs failed.
    """
    from streamdeblur.batch.run import BatchOptions, run_batch

    batch = BatchOptions(
        in_dir,
        out_dir,
        suffix=options.pop("suffix"),
        formats=options.pop("formats"),
        jobs=options.pop("jobs"),
        manifest=options.pop("manifest"),
        ray=options.pop("ray_address"),
        report=options["report"],
        quiet=options["quiet"],
    )
    return run_batch(batch, config_from(options))


@cli.command("live")
@click.argument("source", metavar="SOURCE")
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    metavar="OUTPUT",
    help="Video file (.mp4, .mkv), rtsp://host/path (publish), udp://host:port (MPEG-TS), "
    "or - (raw rgb24 frames on stdout); repeat for several.",
)
@click.option("--preview", is_flag=True, help="Show the output in a window (s: side by side, q/Esc: quit).")
@click.option(
    "--duration", type=click.FloatRange(0, min_open=True), default=None, metavar="SEC", help="Stop after SEC seconds."
)
@click.option(
    "--realtime/--no-realtime",
    default=True,
    show_default=True,
    help="A file SOURCE plays at its native rate; --no-realtime reads it as fast as it decodes.",
)
@click.option("--rtsp-transport", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    metavar="SEC",
    default=5.0,
    show_default=True,
    help="Seconds without a frame before the source counts as stalled and is reconnected "
    "(connecting may take twice as long).",
)
@click.option(
    "--reconnect-attempts",
    type=click.IntRange(0),
    default=None,
    help="Give up after this many failed reconnect attempts in a row (default: never).",
)
@engine_options
@output_options
def live_command(source: str, outputs: tuple[str, ...], **options: Any) -> int:
    """Deblur a live SOURCE: a webcam (0, /dev/video0), rtsp://, http(s)://, udp://, or a file
    played at its native rate. Runs until --duration, Ctrl-C or q in the preview."""
    from streamdeblur.io.sources import StreamOptions
    from streamdeblur.live import LiveOptions, run_live
    from streamdeblur.live_display import LiveDisplay

    stream = StreamOptions(
        realtime=options.pop("realtime"),
        rtsp_transport=options.pop("rtsp_transport"),
        timeout=options.pop("timeout"),
        reconnect_attempts=options.pop("reconnect_attempts"),
    )
    live = LiveOptions(list(outputs), options.pop("preview"), options.pop("duration"), stream)
    display = LiveDisplay(quiet=options["quiet"], duration=live.duration)
    try:
        result = run_live(source, config_from(options), live, display)
    finally:
        display.stop()
    if options["report"]:
        write_report(options["report"], result.report().to_json())
    display.summary(result)
    if result.failure:
        raise StreamdeblurError(result.failure)
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


@cli.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> int:
    """List the models: size, cost, installed weights and what they gained on held-out photos.

    The gains (PSNR on the held-out split of the training photos, `default` and `mild` blur)
    and the CPU speed (640x360, 2 threads) come from the weights' manifest entry
    (benchmarks/compare_models.py --record writes them).
    """
    from streamdeblur.engine.weights import find_default_weights, read_manifest
    from streamdeblur.models import create_model

    rows = []
    for spec in list_models():
        params = sum(p.numel() for p in create_model(spec.name).parameters())
        weights = find_default_weights(spec)
        entry = read_manifest(weights.parent).get(weights.name, {}) if weights else {}
        rows.append(
            {
                "name": spec.name,
                "params": params,
                "macs_per_pixel": spec.macs_per_pixel,
                "recurrent": spec.recurrent,
                "input_multiple": spec.input_multiple,
                "weights": str(weights) if weights else None,
                "gain_db": entry.get("eval", {}).get("psnr", {}).get("gain"),
                "gain_mild_db": entry.get("eval_mild", {}).get("psnr", {}).get("gain"),
                "cpu_fps_640x360": entry.get("cpu_fps_640x360"),
                "summary": spec.summary,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return EXIT_OK
    table = Table(title="streamdeblur models")
    columns = ("name", "params", "MACs/px", "recurrent", "weights", "gain dB", "gain mild", "CPU fps 360p")
    for column in columns:
        table.add_column(column, justify="left" if column in ("name", "weights") else "right")
    figure = lambda value, fmt: "" if value is None else format(value, fmt)  # noqa: E731
    for r in rows:
        table.add_row(
            r["name"],
            f"{r['params'] / 1e6:.2f} M",
            f"{r['macs_per_pixel'] / 1e3:.0f} k",
            "yes" if r["recurrent"] else "no",
            "[green]yes[/]" if r["weights"] else "[dim]none[/]",
            figure(r["gain_db"], "+.2f"),
            figure(r["gain_mild_db"], "+.2f"),
            figure(r["cpu_fps_640x360"], ".1f"),
        )
    console = Console()
    console.print(table)
    for r in rows:
        console.print(f"[bold]{r['name']}[/]: {r['summary']}")
    if not all(r["weights"] for r in rows):
        console.print("[dim]Models without default weights need --weights PATH (see README: Weights).[/]")
    return EXIT_OK


@cli.command("bench")
@click.option("--model", default="auto", show_default=True, type=click.Choice(["auto", *model_names()]))
@click.option("--size", default="1280x720", show_default=True, help="WIDTHxHEIGHT of the input.")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS))
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0))
@click.option("--threads", default=None, type=click.IntRange(1), help="CPU threads for torch.")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON line.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def bench_command(
    model: str,
    size: str,
    device: str,
    precision: str,
    runs: int,
    warmup: int,
    threads: int | None,
    as_json: bool,
    debug: bool,
) -> int:
    """Time a model alone (median of RUNS after WARMUP; CUDA events on GPU)."""
    from streamdeblur.bench import parse_size, run_bench

    result = run_bench(model, parse_size(size), device, precision, runs, warmup, threads)
    if not as_json:
        Console(stderr=True).print(
            f"{result['model']} {result['size']} {result['precision']} on {result['device']}: "
            f"[bold]{result['latency_ms']:.1f} ms[/] ({result['fps']:.2f} fps, {result['tflops']:.2f} TFLOP/s)"
        )
    click.echo(json.dumps(result))
    return EXIT_OK


@cli.command("train")
@train_options
def train_command(**options: Any) -> int:
    """Train a model on your data; writes checkpoints, logs and .safetensors weights to --out."""
    return train_from_options(options)


@cli.command("eval")
@eval_options
def eval_command(**options: Any) -> int:
    """PSNR, SSIM and sharpness of a model's output against ground truth, with the input's."""
    return eval_from_options(options)


@cli.command("import-weights")
@click.argument("src", metavar="SRC")
@click.option("--model", required=True, type=click.Choice(model_names()))
@click.option("-o", "--output", required=True, metavar="PATH.safetensors", help="Converted weights.")
@click.option("--half", is_flag=True, help="Store fp16 (half the size; no longer bit-exact).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def import_weights_command(src: str, model: str, output: str, half: bool, overwrite: bool, debug: bool) -> int:
    """Convert an official checkpoint (a format the model reads, see `streamdeblur models`) to our format."""
    from streamdeblur.importer import import_weights

    entry = import_weights(src, model, output, half, overwrite)
    Console(stderr=True, highlight=False).print(
        f"[green]imported[/] {entry['source']['format']} {src} → {output} ({entry['precision']}, manifest updated)"
    )
    return EXIT_OK


@cli.command("compare")
@click.argument("input", metavar="INPUT")
@click.argument("output_", metavar="OUTPUT")
@click.option("-o", "--dest", required=True, metavar="SIDE_BY_SIDE", help="An image (.png) or video (.mp4) file.")
@click.option("--edges", is_flag=True, help="Add a panel of edges: input red, output green.")
@click.option("--frame", type=click.IntRange(0), default=None, help="For an image of videos: which frame.")
@click.option("--overwrite", is_flag=True, help="Replace the file if it exists.")
@click.option("--crf", type=click.IntRange(0, 63), default=DEFAULT_CRF, show_default=True)
@click.option("--codec", default=None, help="Video encoder; default: by container (see the main command).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def compare_command(input: str, output_: str, dest: str, edges: bool, frame: int | None, **o: Any) -> int:
    """Side by side: INPUT | OUTPUT (| edges), each with its blur score."""
    from streamdeblur.compare import compare

    count = compare(input, output_, dest, edges, frame, o["overwrite"], EncodeOptions(codec=o["codec"], crf=o["crf"]))
    Console(stderr=True, highlight=False).print(f"[green]done[/]  {count} frame(s) → {dest}")
    return EXIT_OK


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops a run the way Ctrl-C does: the output is finished, not left half-written."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    tune_allocator()
    try:
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        err.print(f"{PROG}: interrupted")
        code = EXIT_INTERRUPTED
    except click.ClickException as e:  # usage errors included (exit code 2)
        err.print(f"{PROG}: error: {e.format_message()}", markup=False)
        code = e.exit_code
    except StreamdeblurError as e:
        if debug:
            raise
        err.print(f"{PROG}: error: {e}", markup=False)
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        err.print(
            f"{PROG}: internal error: {type(e).__name__}: {first_line(e)} (rerun with --debug for details)",
            markup=False,
        )
        code = EXIT_FAILED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
