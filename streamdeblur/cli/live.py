"""`streamdeblur live SOURCE`: a camera or stream, with its status panel."""

from __future__ import annotations

from typing import Any

import click

from streamdeblur.cli.live_display import LiveDisplay
from streamdeblur.cli.options import config_from, engine_options, output_options
from streamdeblur.core.errors import EXIT_INTERRUPTED, EXIT_OK, StreamdeblurError
from streamdeblur.io.sources import StreamOptions
from streamdeblur.live import LiveOptions, run_live
from streamdeblur.pipeline.stats import write_report


@click.command("live")
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
