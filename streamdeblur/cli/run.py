"""`streamdeblur INPUT -o OUTPUT` (the `run` command): file mode."""

from __future__ import annotations

from typing import Any

import click

from streamdeblur.cli.display import RunDisplay
from streamdeblur.cli.options import config_from, engine_options, output_options
from streamdeblur.core.errors import EXIT_INTERRUPTED, EXIT_OK
from streamdeblur.file import run_file
from streamdeblur.pipeline.stats import write_report


@click.command("run")
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
