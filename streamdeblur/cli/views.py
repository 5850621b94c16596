"""`--views`, shared by the jobs, `eval`, `bench` and `train --teacher-views`; apart from `cli/options.py` so that
`eval` and `bench` do not import the video stack (training on photos needs no PyAV)."""

from __future__ import annotations

from typing import Callable

import click

from streamdeblur.engine.ensemble import VIEWS


def views_option(
    flag: str = "--views",
    help: str = "Run the model on this many views of each frame (shifted, flipped, transposed) and average "
    "them: sharper output for N times the compute (frame-by-frame models).",
) -> Callable:
    """`--views N` (or another flag with the same values): N views of each frame (`engine.ensemble`)."""
    return click.option(
        flag,
        default="1",
        show_default=True,
        type=click.Choice([str(v) for v in VIEWS]),
        callback=lambda _ctx, _param, value: int(value),
        help=help,
    )
