"""File mode: one video, image or image sequence in, one out (`streamdeblur INPUT -o OUTPUT`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from streamdeblur.core.files import remove_empty
from streamdeblur.core.report import FileReport
from streamdeblur.engine.build import Engine, build_engine
from streamdeblur.io.sinks import check_file_output, open_file_sink
from streamdeblur.io.sources import Source, SourceInfo, open_source
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.pipeline import Pipeline
from streamdeblur.pipeline.stats import RunStats


@dataclass
class RunResult:
    """How a job went: its statistics, the engine that ran it, and whether it was cut short."""

    stats: RunStats
    engine: Engine
    interrupted: bool
    completed: bool  # OUTPUT is complete at its final name (also after a graceful interrupt)

    def report(self) -> FileReport:
        return self.stats.report(self.engine.report_fields())


def run_file(
    input_uri: str | Source,
    output: str,
    config: RunConfig,
    on_start: Callable[[SourceInfo, Engine, list[str]], None] | None = None,
    on_tick: Callable[[RunStats], None] | None = None,
    engine: Engine | None = None,
    abort: threading.Event | None = None,
) -> RunResult:
    """Deblur one video, image or image sequence (a URI, or a `Source` already opened) into OUTPUT.

    The output is complete and playable also when the run was interrupted (Ctrl-C); on an
    error nothing is left at OUTPUT (not even the folders made for it) and an existing file
    there is untouched; a damaged input is processed as far as it decodes (`stats.damage`).
    Pass an `engine` to reuse a loaded model across files (its recurrent state is reset), and
    `abort` to make an interruption discard the output instead (see `Pipeline.run`).
    """
    source = input_uri if isinstance(input_uri, Source) else open_source(input_uri)
    created: list[Path] = []
    pipeline: Pipeline | None = None
    try:
        created = check_file_output(output, source, config.overwrite, config.encode.codec)
        if engine is None:
            engine = build_engine(config, source.info.size)
        engine.runner.reset()
        stats = RunStats(frames_total=source.info.frame_count, record_frames=config.record_frames)
        processor = config.processor(engine, stats)
        sink = open_file_sink(output, source, config.encode)
        try:
            if on_start:
                on_start(source.info, engine, [*engine.warnings, *sink.warnings])
            pipeline = Pipeline(source, [sink], processor, stats)
        except BaseException:  # nothing runs yet: the sink's partial file must go
            sink.abort()
            raise
        interrupted = pipeline.run(on_tick=(lambda: on_tick(stats)) if on_tick else None, abort=abort)
    finally:
        source.close()
        if pipeline is None or not pipeline.completed:
            remove_empty(created)
    return RunResult(stats, engine, interrupted, pipeline.completed)
