"""`streamdeblur compare IN OUT -o SIDE_BY_SIDE`: look at the difference."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from streamdeblur.compare import compare
from streamdeblur.core.errors import EXIT_OK
from streamdeblur.io.sinks import DEFAULT_CRF, EncodeOptions


@click.command("compare")
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
    count = compare(input, output_, dest, edges, frame, o["overwrite"], EncodeOptions(codec=o["codec"], crf=o["crf"]))
    Console(stderr=True, highlight=False).print(f"[green]done[/]  {count} frame(s) → {dest}")
    return EXIT_OK
