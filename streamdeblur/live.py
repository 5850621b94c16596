"""`streamdeblur live`: deblur a camera or stream with bounded latency and show how it keeps up.

    reader ─▶ decode/watchdog ─q_in(1, drops oldest)─▶ gate → model ─q_out─▶ outputs, preview

Latency wins over completeness: the input queue holds one frame and a newer one replaces it,
so a model slower than the source drops frames (counted) instead of falling further behind.
Latency is measured per frame from capture (the moment the reader got the frame) to the
moment every output has taken it. `--model auto` checks before the run that the chosen model
keeps up with the source's rate and takes the lighter one when it does not.
"""

from __future__ import annotations

import array
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streamdeblur.core.frame import Frame
from streamdeblur.core.report import LiveFigures, LiveReport
from streamdeblur.engine.build import Engine, build_engine, has_weights
from streamdeblur.engine.choice import lighter_model
from streamdeblur.io.sinks import PreviewWindow, Sink, check_display, check_live_outputs, open_live_outputs, output_kind
from streamdeblur.io.sources import LiveSource, SourceInfo, StreamOptions, open_source
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.pipeline import Pipeline
from streamdeblur.pipeline.stats import RunStats

LIVE_QUEUE = 1  # frames waiting between stages: the newest only
KEEP_UP_RUNS = 3  # timed model runs (after one warm-up) for the --model auto check
RECENT = 100  # frames the status panel's latency figures look back on


@dataclass
class LiveOptions:
    outputs: list[str] = field(default_factory=list)
    preview: bool = False
    duration: float | None = None
    stream: StreamOptions = field(default_factory=StreamOptions)


class LatencyProbe(Sink):
    """The last sink: records capture→output latency once every other output has the frame."""

    def __init__(self) -> None:
        self.path = Path("latency")
        self.warnings = []
        self.latencies = array.array("f")  # seconds; 4 bytes a frame, so a day-long run is no burden

    def write(self, frame: Frame) -> None:
        self.latencies.append(time.monotonic() - frame.captured)

    def percentiles_ms(self, last: int | None = None) -> dict[str, float | None]:
        # Slice first: a copy made under the GIL, so the encode thread's appends never meet an exported buffer.
        values = np.frombuffer(self.latencies[-last if last else 0 :], np.float32)
        if not values.size:
            return {"p50": None, "p95": None, "max": None}
        p50, p95 = np.percentile(values, [50, 95])
        return {"p50": round(1000 * p50, 1), "p95": round(1000 * p95, 1), "max": round(1000 * float(values.max()), 1)}

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


@dataclass
class LiveResult:
    """How a live run went, and why it ended (`failure`: the source or an output was lost)."""

    stats: RunStats
    engine: Engine
    source: LiveSource
    latency: LatencyProbe
    interrupted: bool
    failure: str | None

    def report(self) -> LiveReport:
        live = LiveFigures(self.source.reconnects, self.latency.percentiles_ms())
        return self.stats.report(self.engine.report_fields(), LiveReport, live=live)


def model_ms(engine: Engine, info: SourceInfo) -> float:
    """Median milliseconds of the model on one frame of the source's size (after a warm-up)."""
    image = np.full((info.height, info.width, 3), 128, np.uint8)
    times = []
    for _ in range(1 + KEEP_UP_RUNS):
        start = time.perf_counter()
        engine.runner(image)
        times.append(time.perf_counter() - start)
    engine.runner.reset()
    return 1000 * float(np.median(times[1:]))


def keep_up(engine: Engine, config: RunConfig, info: SourceInfo) -> Engine:
    """With `--model auto`, trade the preferred model for the light one when it cannot keep up
    with the source's frame rate (it would only drop frames); the reason goes to `fallback`."""
    if config.model != "auto" or config.weights is not None:
        return engine
    lighter = lighter_model(engine.runner.spec, has_weights(config))
    if lighter is None:
        return engine  # no lighter model has weights: this one, dropping frames, is all there is
    ms, budget = model_ms(engine, info), 1000 / float(info.fps)
    if ms <= budget:
        return engine
    light = build_engine(dataclasses.replace(config, model=lighter.name), info.size)
    light.fallback = (
        f"auto: {engine.runner.spec.name} takes {ms:.0f} ms per {info.width}x{info.height} frame, "
        f"the source sends one every {budget:.0f} ms"
    )
    return light


def keeping_original(process: Callable[[Frame], Frame]) -> Callable[[Frame], Frame]:
    """For the side-by-side preview: the frame remembers its input picture."""

    def run(frame: Frame) -> Frame:
        frame.original = frame.image
        return process(frame)

    return run


def run_live(uri: str, config: RunConfig, options: LiveOptions, display: Any) -> LiveResult:
    """Deblur a live source into the outputs until `duration`, Ctrl-C, `q` in the preview, the end
    of a file, or the loss of the source (reconnect attempts used up) or of an output.

    Outputs are finished in every case but an error, so recordings always play.
    """
    if options.preview:
        check_display()
    for output in options.outputs:
        output_kind(output)  # usage errors before connecting
    source = open_source(uri, options.stream)
    preview = PreviewWindow() if options.preview else None
    try:
        check_live_outputs(options.outputs, source, config.overwrite, config.encode.codec)
        engine = keep_up(build_engine(config, source.info.size), config, source.info)
        stats = RunStats(record_frames=config.record_frames)
        processor = config.processor(engine, stats)
        outputs = open_live_outputs(options.outputs, source, config.encode)
        probe = LatencyProbe()
        sinks = [*outputs, *([preview] if preview else []), probe]
        process = keeping_original(processor) if preview else processor
        try:
            pipeline = Pipeline(source, sinks, process, stats, queue_size=LIVE_QUEUE, live=True)
            display.start(source, engine, outputs)
        except BaseException:  # nothing runs yet (Ctrl-C here, say): partial files and connections must go
            for sink in outputs:
                sink.abort()
            raise
        failure: list[str] = []

        def tick() -> None:
            display.tick(stats, source, probe, pipeline)
            if preview:
                preview.show()
            failed = [s.failed for s in sinks if s.failed]
            if failed and not failure:
                failure.append(failed[0])
            done = options.duration is not None and stats.elapsed >= options.duration
            if done or failed or (preview and preview.quit):
                pipeline.stop.set()

        interrupted = pipeline.run(on_tick=tick, tick=0.02 if preview else 0.1)
    finally:
        source.close()
        if preview:
            preview.close()
    # Frames the reader dropped never reached the pipeline's counters (its own drops it counted).
    stats.frames_in += source.dropped
    stats.frames_dropped += source.dropped
    return LiveResult(stats, engine, source, probe, interrupted, source.failure or (failure[0] if failure else None))
