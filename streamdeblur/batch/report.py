"""The batch report: the run report's keys summed over the files, plus one entry per input.

`frames` keeps one entry per written frame as in a file's report, each naming its input;
`inputs` has, for every file found, its `status` (done, skipped, failed; `interrupted` and
`pending` when the batch was stopped), `error` (failed) or `reason` (skipped), frames
written, seconds spent, and `input_damaged` for a damaged input that was done all the same.
`batching` says how many frames shared the model's passes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from streamdeblur.batch.plan import STATUSES, Item
from streamdeblur.core.report import BatchFigures, BatchInput, BatchReport, EngineFields
from streamdeblur.pipeline.stats import RunStats


def totals(items: list[Item], seconds: float) -> RunStats:
    """One `RunStats` for the whole batch: counts and stage times added up over the files
    written (an interrupted file's frames were discarded with it)."""
    total = RunStats()
    total.started, total.finished = 0.0, seconds
    for item in items:
        stats = item.stats
        if stats is None or item.status != "done":
            continue
        total.frames_in += stats.frames_in
        total.frames_out += stats.frames_out
        total.frames_skipped += stats.frames_skipped
        total.frames_dropped += stats.frames_dropped
        for name, timer in stats.stages.items():
            total.stages[name].total += timer.total
            total.stages[name].count += timer.count
        rel = item.rel.as_posix()
        total.frames.extend({"input": rel, **frame} for frame in stats.frames)
    return total


def engine_fields(items: list[Item]) -> EngineFields:
    """The engine fields of the files that ran; where they differ (several GPUs or cluster
    nodes), the values joined with commas."""
    engines = [i.engine for i in items if i.engine]
    joined = {}
    for f in dataclasses.fields(EngineFields):
        values = list(dict.fromkeys(v for e in engines if (v := getattr(e, f.name)) is not None))
        joined[f.name] = values[0] if len(values) == 1 else ", ".join(map(str, values)) or None
    return EngineFields(**joined)


def batch_input(item: Item, out_dir: Path) -> BatchInput:
    return BatchInput(
        input=item.rel.as_posix(),
        output=item.dst.relative_to(out_dir).as_posix() if item.dst else None,
        kind=item.kind,
        status=item.status,
        error=item.error,
        reason=item.reason,
        frames=item.frames,
        seconds=round(item.seconds, 3),
        warnings=item.warnings,
        input_damaged=item.stats.damage.report() if item.stats and item.stats.damage else None,
    )


def batch_report(
    items: list[Item], in_dir: Path, out_dir: Path, seconds: float, batching: dict[str, int] | None = None
) -> BatchReport:
    """`batching` (local runs): forward passes of the model and frames through them."""
    figures = BatchFigures(
        in_dir=str(in_dir),
        out_dir=str(out_dir),
        seconds=round(seconds, 3),
        batching=batching,
        counts={status: sum(i.status == status for i in items) for status in STATUSES},
        inputs=[batch_input(item, out_dir) for item in items],
    )
    return totals(items, seconds).report(engine_fields(items), BatchReport, batch=figures)
