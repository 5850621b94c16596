"""The model commands: `models` (the table), `bench` (a model alone, timed) and `import-weights`."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from streamdeblur.bench import parse_size, run_bench
from streamdeblur.cli.views import views_option
from streamdeblur.core.errors import EXIT_OK
from streamdeblur.engine.device import PRECISIONS
from streamdeblur.engine.ensemble import in_views
from streamdeblur.engine.weights import find_default_weights, read_manifest
from streamdeblur.importer import import_weights
from streamdeblur.models import create_model, list_models, model_names


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(as_json: bool) -> int:
    """List the models: size, cost, installed weights and what they gained on held-out photos.

    The gains (PSNR on the held-out split of the training photos, `default` and `mild` blur)
    and the CPU speed (640x360, 2 threads) come from the weights' manifest entry
    (benchmarks/compare_models.py --record writes them).
    """

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


@click.command("bench")
@click.option("--model", default="auto", show_default=True, type=click.Choice(["auto", *model_names()]))
@click.option("--size", default="1280x720", show_default=True, help="WIDTHxHEIGHT of the input.")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", default="auto", show_default=True, type=click.Choice(PRECISIONS))
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(0))
@click.option("--threads", default=None, type=click.IntRange(1), help="CPU threads for torch.")
@views_option()
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
    views: int,
    as_json: bool,
    debug: bool,
) -> int:
    """Time a model alone (median of RUNS after WARMUP; CUDA events on GPU)."""
    result = run_bench(model, parse_size(size), device, precision, runs, warmup, threads, views)
    if not as_json:
        Console(stderr=True).print(
            f"{result['model']}{in_views(views)} {result['size']} {result['precision']} on {result['device']}: "
            f"[bold]{result['latency_ms']:.1f} ms[/] ({result['fps']:.2f} fps, {result['tflops']:.2f} TFLOP/s)"
        )
    click.echo(json.dumps(result))
    return EXIT_OK


@click.command("import-weights")
@click.argument("src", metavar="SRC")
@click.option("--model", required=True, type=click.Choice(model_names()))
@click.option("-o", "--output", required=True, metavar="PATH.safetensors", help="Converted weights.")
@click.option("--half", is_flag=True, help="Store fp16 (half the size; no longer bit-exact).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def import_weights_command(src: str, model: str, output: str, half: bool, overwrite: bool, debug: bool) -> int:
    """Convert an official checkpoint (a format the model reads, see `streamdeblur models`) to our format."""
    entry = import_weights(src, model, output, half, overwrite)
    Console(stderr=True, highlight=False).print(
        f"[green]imported[/] {entry['source']['format']} {src} → {output} ({entry['precision']}, manifest updated)"
    )
    return EXIT_OK
