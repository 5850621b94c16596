"""What the user sees while a job runs: a header, a rich progress line with live FPS, a summary.

Everything goes to stderr so stdout stays free for data (`-o -`, `--json`). `-q` silences it
all except errors.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.status import Status
from rich.text import Text

from streamdeblur.engine.build import Engine
from streamdeblur.io.sources import SourceInfo
from streamdeblur.pipeline.stats import RunStats

_SHORT = {"decode": "dec", "gate": "gate", "denoise": "den", "model": "model", "encode": "enc"}


def stage_summary(stats: RunStats) -> str:
    """`dec 2.1 · gate 0.4 · model 95.0 · enc 5.2 ms` (stages that ran, mean ms per frame)."""
    parts = [f"{_SHORT[name]} {t.mean_ms:.1f}" for name, t in stats.stages.items() if t.count]
    return " · ".join(parts) + " ms" if parts else ""


def format_rate(fps: float) -> str:
    """29.97, 25, 12.5: a frame rate without trailing zeros."""
    return f"{float(fps):.3f}".rstrip("0").rstrip(".")


def clock(seconds: float) -> str:
    """H:MM:SS (live runs last hours or days)."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def describe_engine(engine: Engine) -> str:
    """`MODEL on cpu (...) fp32 (auto: ...)`: the model and why it was chosen."""
    why = engine.fallback or (engine.reason if engine.reason != "requested" else "")
    return engine.description + (f" [dim]({why})[/]" if why else "")


def describe_source(info: SourceInfo) -> str:
    count = f"{info.frame_count} frames" if info.frame_count else "? frames"
    rate = format_rate(info.fps)
    if info.kind == "image":
        return f"{info.uri}: image {info.width}x{info.height}, {info.bit_depth}-bit"
    size = f"{info.width}x{info.height}"
    return f"{info.uri}: {info.kind} {size} @ {rate} fps, {count}, {info.bit_depth}-bit, {info.colour.describe()}"


class _TwoLineProgress(Progress):
    """The bar on one line, the live figures on the next: both fit an 80-column terminal."""

    status: RenderableType = ""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        yield self.status


class RunDisplay:
    """Header, live progress (frames, ETA, output fps, per-stage ms, skip %) and summary."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self._progress: Progress | None = None
        self._task = None
        self._loading: Status | None = None

    def begin(self) -> None:
        """Before anything is known: say what the wait is for."""
        if not self.quiet:
            self._loading = self.console.status("opening the input and loading the model…")
            self._loading.start()

    def start(self, info: SourceInfo, engine: Engine, warnings: list[str]) -> None:
        self._stop_loading()
        if self.quiet:
            return
        self.console.print(f"[bold]input[/]  {describe_source(info)}")
        self.console.print(f"[bold]model[/]  {describe_engine(engine)}")
        for warning in warnings:
            self.console.print(f"[yellow]warning[/] {warning}")
        self._progress = _TwoLineProgress(
            TextColumn("[bold blue]deblurring"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task("run", total=info.frame_count)
        self._progress.status = Text.from_markup("  [dim]deblurring the first frame… (the time left shows after it)[/]")
        self._progress.start()

    def _stop_loading(self) -> None:
        if self._loading is not None:
            self._loading.stop()
            self._loading = None

    def tick(self, stats: RunStats) -> None:
        if self._progress is None or not stats.frames_out:
            return
        total = max(stats.frames_total or 0, stats.frames_out) or None
        self._progress.update(self._task, completed=stats.frames_out, total=total)
        self._progress.status = Text.from_markup(
            f"  [bold]{stats.recent_fps:.1f} fps[/]  [dim]{stage_summary(stats)}[/]  skip {stats.skip_ratio:.0%}"
        )

    def stop(self, stats: RunStats | None = None) -> None:
        self._stop_loading()
        if self._progress is None:
            return
        if stats is not None:
            self.tick(stats)
        self._progress.stop()
        self._progress = None

    def summary(self, stats: RunStats, output: str, interrupted: bool) -> None:
        self.stop(stats)
        if self.quiet:
            return
        if stats.damage:
            self.console.print(Text.assemble(("warning ", "yellow"), stats.damage.message), soft_wrap=True)
        state = "[yellow]interrupted[/]" if interrupted else "[green]done[/]"
        self.console.print(
            f"{state}  {stats.frames_out} frames in {stats.elapsed:.1f} s ({stats.fps:.1f} fps), "
            f"{stats.frames_skipped} skipped as sharp → {output}"
        )
