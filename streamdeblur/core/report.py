"""The run reports (`--report PATH.json`): one type per mode, built from shared typed parts.

    FileReport   counts, engine, stages, frames            streamdeblur INPUT -o OUTPUT
    LiveReport   the same + LiveFigures                     streamdeblur live
    BatchReport  the same + BatchFigures (one BatchInput per file)   streamdeblur batch

The parts are filled in by their owners (`RunStats.report`, `Engine.report_fields`, live and
batch modes); `to_json()` lays them out with the keys and in the order docs/report.md
documents, and docs/report.schema.json is what the tests check every mode's report against.
A new field is one attribute on its part, one line in the schema and one in docs/report.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Counts:
    """Frames through the run; `frames_in` = `frames_out` + `frames_dropped`, always."""

    frames_in: int
    frames_out: int
    frames_skipped: int
    frames_dropped: int
    fps: float
    input_damaged: dict[str, Any] | None  # io/damage.py: what was wrong with a damaged input


@dataclass(frozen=True)
class EngineFields:
    """Which model ran where; batch joins several values (GPUs, cluster nodes) with commas."""

    model: str | None
    weights: str | None
    device: str | None
    precision: str | None
    fallback: str | None  # why --model auto passed over better-ranked models
    views: int | None = None  # --views: how many views of each frame the model's outputs were averaged over


@dataclass(frozen=True)
class StageTime:
    total_ms: float
    mean_ms: float


@dataclass(frozen=True)
class LiveFigures:
    reconnects: int
    latency_ms: dict[str, float | None]  # capture → output: p50, p95, max


@dataclass(frozen=True)
class BatchInput:
    """One file of a batch: `status` done, skipped, failed, interrupted or pending."""

    input: str
    output: str | None
    kind: str | None  # "video" or "image"; None: neither
    status: str
    error: str | None
    reason: str | None
    frames: int
    seconds: float
    warnings: list[str]
    input_damaged: dict[str, Any] | None


@dataclass(frozen=True)
class BatchFigures:
    in_dir: str
    out_dir: str
    seconds: float
    batching: dict[str, int] | None  # local runs: the model's forward passes and the frames through them
    counts: dict[str, int]  # inputs per status
    inputs: list[BatchInput]


@dataclass(frozen=True)
class FileReport:
    counts: Counts
    engine: EngineFields | None
    stages: dict[str, StageTime]
    frames: list[dict[str, Any]] = field(repr=False)  # index, pts, blur_score, processed (batch: input too)

    def _head(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.counts), **(dataclasses.asdict(self.engine) if self.engine else {})}

    def _tail(self) -> dict[str, Any]:
        return {"stages": {name: dataclasses.asdict(t) for name, t in self.stages.items()}, "frames": self.frames}

    def to_json(self) -> dict[str, Any]:
        return {**self._head(), **self._tail()}


@dataclass(frozen=True)
class LiveReport(FileReport):
    live: LiveFigures | None = None

    def to_json(self) -> dict[str, Any]:
        live = dataclasses.asdict(self.live) if self.live else {}
        return {**self._head(), **live, **self._tail()}


@dataclass(frozen=True)
class BatchReport(FileReport):
    batch: BatchFigures | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), **(dataclasses.asdict(self.batch) if self.batch else {})}
