"""What the user sees during a batch: the plan, overall progress (files, frames, ETA), one
line per file in flight, failures as they happen, and a summary table at the end.

Workers report from their own threads; everything is drawn from the main thread's `tick`,
so rich is only ever touched by one thread. Output goes to stderr; `-q` keeps only the
failures (one line each).
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from streamdeblur.batch.plan import Item
from streamdeblur.engine.build import Engine
from streamdeblur.pipeline.stats import RunStats

LISTED = 20  # skipped files named in the summary; the report has them all
NAME_WIDTH = 32


def short(path: Path, width: int = NAME_WIDTH) -> str:
    text = path.as_posix()
    return text if len(text) <= width else "…" + text[-(width - 1) :]


class BatchDisplay:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self._lock = threading.Lock()
        self._events: collections.deque[tuple[str, Item]] = collections.deque()
        self._live: dict[int, tuple[Item, RunStats | None]] = {}
        self._tasks: dict[int, int] = {}
        self._progress: Progress | None = None
        self._overall = None
        self._files_total = self._files_done = self._frames_done = 0

    def plan(self, items: list[Item], in_dir: Path, out_dir: Path) -> None:
        todo = [i for i in items if i.status == "pending"]
        self._files_total = len(todo)
        if self.quiet:
            for item in items:
                if item.status == "failed":
                    self._print_failure(item)
            return
        videos = [i for i in todo if i.kind == "video"]
        frames = sum(i.frames_total or 0 for i in videos)
        done = sum(i.reason == "output exists" for i in items)
        neither = sum(i.status == "skipped" and i.kind is None for i in items)
        failed = sum(i.status == "failed" for i in items)
        self.console.print(
            f"[bold]batch[/]  {in_dir} → {out_dir}: {len(todo)} to do ({len(videos)} videos, {frames} frames; "
            f"{len(todo) - len(videos)} images), {done} already done, {neither} not media, {failed} unreadable"
        )
        for item in items:
            if item.status == "failed":
                self._print_failure(item)

    def model(self, engines: list[Engine]) -> None:
        if self.quiet or not engines:
            return
        engine = engines[0]
        why = engine.fallback or (engine.reason if engine.reason != "requested" else "")
        where = ", ".join(e.description for e in engines)
        self.console.print(f"[bold]model[/]  {where}" + (f" [dim]({why})[/]" if why else ""))

    def start(self, frames_total: int) -> None:
        if self.quiet:
            return
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._overall = self._progress.add_task("[bold blue]batch", total=frames_total or None, count="")
        self._progress.start()

    # --- Monitor: called from worker threads ---------------------------------------------
    def started(self, item: Item) -> None:
        with self._lock:
            self._events.append(("started", item))

    def progress(self, item: Item, stats: RunStats) -> None:
        self._live[id(item)] = (item, stats)

    def finished(self, item: Item) -> None:
        with self._lock:
            self._events.append(("finished", item))

    def tick(self) -> None:
        """Apply the workers' events and redraw (main thread only)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        for kind, item in events:
            if kind == "started":
                self._live[id(item)] = (item, None)
                if self._progress is not None:
                    self._tasks[id(item)] = self._progress.add_task(
                        f"  {short(item.rel)}", total=item.frames_total, count=""
                    )
            else:
                self._live.pop(id(item), None)
                self._files_done += 1
                self._frames_done += item.frames
                if item.status == "failed":
                    self._print_failure(item)
                elif not self.quiet:
                    for warning in item.warnings:
                        self.console.print(
                            Text.assemble(("warning ", "yellow"), f"{item.rel}: {warning}"), soft_wrap=True
                        )
                task = self._tasks.pop(id(item), None)
                if task is not None and self._progress is not None:
                    self._progress.remove_task(task)
        if self._progress is None:
            return
        frames = self._frames_done
        for key, (item, stats) in list(self._live.items()):
            done = stats.frames_out if stats else 0
            frames += done
            task = self._tasks.get(key)
            if task is not None:
                total = max(item.frames_total or 0, done) or None
                self._progress.update(task, completed=done, total=total, count=f"{done}/{total or '?'}")
        overall = self._progress.tasks[0]
        total = max(overall.total or 0, frames) or None
        self._progress.update(
            self._overall,
            completed=frames,
            total=total,
            count=f"files {self._files_done}/{self._files_total} · frames {frames}/{total or '?'}",
        )

    def stop(self) -> None:
        if self._progress is not None:
            self.tick()
            self._progress.stop()
            self._progress = None

    def _print_failure(self, item: Item) -> None:
        """One line per failed input, never wrapped (scripts grep for them)."""
        line = f"{item.rel}: {item.error}"
        if self.quiet:
            self.console.print(line, markup=False, soft_wrap=True)
        else:
            self.console.print("[red]failed[/] ", line, soft_wrap=True)

    def summary(self, items: list[Item], seconds: float, out_dir: Path, interrupted: bool) -> None:
        self.stop()
        if self.quiet:
            return
        table = Table(title="batch summary", title_justify="left")
        for column in ("status", "files", "frames", "seconds"):
            table.add_column(column, justify="left" if column == "status" else "right")
        rows = {
            "done": lambda i: i.status == "done",
            "skipped: output exists": lambda i: i.reason == "output exists",
            "skipped: not media": lambda i: i.status == "skipped" and i.kind is None,
            "skipped: other": lambda i: i.status == "skipped" and i.kind is not None and i.reason != "output exists",
            "failed": lambda i: i.status == "failed",
            "interrupted": lambda i: i.status == "interrupted",
            "pending": lambda i: i.status == "pending",
        }
        for label, test in rows.items():
            group = [i for i in items if test(i)]
            if group or label in ("done", "failed"):
                table.add_row(
                    label, str(len(group)), str(sum(i.frames for i in group)), f"{sum(i.seconds for i in group):.1f}"
                )
        self.console.print(table)
        failed = [i for i in items if i.status == "failed"]
        neither = [i for i in items if i.status == "skipped" and i.kind is None]
        for title, group, text in (("failed", failed, "error"), ("not a video or image", neither, "reason")):
            if not group:
                continue
            listing = Table(title=title, title_justify="left", show_header=False)
            listing.add_column("input", overflow="fold")
            listing.add_column(text, overflow="fold")
            for item in group[: LISTED if group is neither else None]:
                listing.add_row(item.rel.as_posix(), getattr(item, text))
            if group is neither and len(group) > LISTED:
                listing.add_row(f"… {len(group) - LISTED} more (see --report)", "")
            self.console.print(listing)
        if interrupted:
            self.console.print(
                "[yellow]interrupted[/]: files in flight were discarded; run the same command again to finish"
            )
        self.console.print(f"[bold]{sum(i.status == 'done' for i in items)} done[/] in {seconds:.1f} s → {out_dir}")
