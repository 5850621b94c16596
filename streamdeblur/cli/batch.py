"""`streamdeblur batch IN_DIR -o OUT_DIR`: every video and image in a folder tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from streamdeblur.batch.run import BatchOptions, run_batch
from streamdeblur.cli.options import config_from, engine_options, output_options


@click.command("batch")
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
