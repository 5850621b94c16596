"""The live status panel: input and output fps, per-stage ms, latency, drops, reconnects.

Everything goes to stderr (stdout may carry raw frames); `-q` shows nothing but errors.
"""

from __future__ import annotations

import collections
import time

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from streamdeblur.cli.display import clock, describe_engine, format_rate, stage_summary
from streamdeblur.engine.build import Engine
from streamdeblur.io.sinks import Sink
from streamdeblur.io.sources import LiveSource
from streamdeblur.live import RECENT, LatencyProbe, LiveResult
from streamdeblur.pipeline.pipeline import Pipeline
from streamdeblur.pipeline.stats import RunStats

WINDOW = 2.0  # seconds the fps figures average over


class Rate:
    """Events per second over the last `WINDOW` seconds, from a growing counter."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def __call__(self, count: int) -> float:
        now = time.monotonic()
        self._samples.append((now, count))
        while now - self._samples[0][0] > WINDOW:
            self._samples.popleft()
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


class LiveDisplay:
    def __init__(self, quiet: bool = False, duration: float | None = None) -> None:
        self.quiet = quiet
        self.duration = duration
        self.console = Console(stderr=True, highlight=False)
        self._live: Live | None = None
        self._events = 0
        self._rate_in, self._rate_out = Rate(), Rate()

    def start(self, source: LiveSource, engine: Engine, outputs: list[Sink]) -> None:
        if self.quiet:
            return
        info = source.info
        self.console.print(
            f"[bold]input[/]  {info.uri}: live {info.width}x{info.height} @ {format_rate(info.fps)} fps, "
            f"{info.bit_depth}-bit, {info.colour.describe()}"
        )
        self.console.print(f"[bold]model[/]  {describe_engine(engine)}")
        for warning in engine.warnings:
            self.console.print(f"[yellow]warning[/] {warning}")
        for sink in outputs:
            self.console.print(f"[bold]output[/] {sink.describe()}")
        self._live = Live(console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def tick(self, stats: RunStats, source: LiveSource, probe: LatencyProbe, pipeline: Pipeline) -> None:
        if self._live is None:
            return
        for event in source.events[self._events :]:
            self._live.console.print(f"[yellow]{event}[/]")
        self._events = len(source.events)
        latency = probe.percentiles_ms(RECENT)
        dropped = pipeline.q_in.dropped + source.dropped
        elapsed = clock(stats.elapsed) + (f" / {clock(self.duration)}" if self.duration else "")
        top = (
            f"[bold]{elapsed}[/]  in {self._rate_in(stats.frames_in + source.dropped):.1f} fps  "
            f"[bold]out {self._rate_out(stats.frames_out):.1f} fps[/]  "
            f"latency {_ms(latency['p50'])} (p95 {_ms(latency['p95'])})"
        )
        bottom = (
            f"{stage_summary(stats)}  dropped {dropped}  skip {stats.skip_ratio:.0%}  "
            f"reconnects {source.reconnects}  queue {len(pipeline.q_in)}/{pipeline.q_in.maxsize}"
        )
        self._live.update(Panel(Group(Text.from_markup(top), Text(bottom, style="dim")), title="live", expand=False))

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self, result: LiveResult) -> None:
        self.stop()
        if self.quiet:
            return
        ended = "[green]done[/]"
        if result.interrupted or result.failure:
            ended = "[yellow]interrupted[/]" if result.interrupted else "[red]stopped[/]"
        stats, latency = result.stats, result.latency.percentiles_ms()
        self.console.print(
            f"{ended}  {stats.frames_out} frames in {stats.elapsed:.1f} s ({stats.fps:.1f} fps), "
            f"{stats.frames_dropped} dropped, {result.source.reconnects} reconnects, "
            f"latency p50 {_ms(latency['p50'])} p95 {_ms(latency['p95'])}"
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
