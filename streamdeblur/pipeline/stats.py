"""Per-stage timings, frame counts and the run report (`--report PATH.json`).

Each stage is timed by the thread that runs it; the main thread only reads the figures
(for the live status line and the report), so no locking is needed beyond the GIL.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from streamdeblur.core.errors import OutputError
from streamdeblur.core.files import atomic_write_text
from streamdeblur.core.frame import Frame
from streamdeblur.core.report import Counts, EngineFields, FileReport, StageTime
from streamdeblur.core.timing import StageTimer
from streamdeblur.io.damage import Damage

STAGES = ("decode", "gate", "denoise", "model", "encode")
R = TypeVar("R", bound=FileReport)


@dataclass
class RunStats:
    """What happened during a run: counts, stage timings, one record per written frame, and
    what was wrong with the input if it was damaged."""

    frames_total: int | None = None
    frames_in: int = 0
    frames_out: int = 0
    frames_skipped: int = 0
    frames_dropped: int = 0
    stages: dict[str, StageTimer] = field(default_factory=lambda: {s: StageTimer() for s in STAGES})
    frames: list[dict[str, Any]] = field(default_factory=list)
    record_frames: bool = True  # live runs without a report keep no per-frame records: memory stays flat
    damage: Damage | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    _recent: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=60))

    def frame_written(self, frame: Frame) -> None:
        self.frames_out += 1
        self.frames_skipped += not frame.processed
        if self.record_frames:
            self.frames.append(
                {
                    "index": frame.index,
                    "pts": frame.time,
                    "blur_score": None if frame.blur_score is None else round(frame.blur_score, 3),
                    "processed": frame.processed,
                }
            )
        now = time.perf_counter()
        self._recent.append(now)

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def fps(self) -> float:
        """Output frames per wall-clock second over the whole run."""
        return self.frames_out / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def recent_fps(self) -> float:
        """Output rate over the last few frames, for the live status line."""
        if len(self._recent) < 2:
            return self.fps
        return (len(self._recent) - 1) / max(self._recent[-1] - self._recent[0], 1e-9)

    @property
    def skip_ratio(self) -> float:
        return self.frames_skipped / self.frames_out if self.frames_out else 0.0

    def counts(self) -> Counts:
        return Counts(
            self.frames_in,
            self.frames_out,
            self.frames_skipped,
            self.frames_dropped,
            round(self.fps, 3),
            self.damage.report() if self.damage else None,
        )

    def report(self, engine: EngineFields | None = None, kind: type[R] = FileReport, **parts: Any) -> R:
        """The run report of `kind` (a mode's own type, with its own `parts`) from these figures."""
        stages = {name: StageTime(round(1000 * t.total, 3), round(t.mean_ms, 3)) for name, t in self.stages.items()}
        return kind(self.counts(), engine, stages, self.frames, **parts)


def check_report_path(path: Path) -> None:
    """Refuse a report that could not be written, before the run rather than after it."""
    if path.is_dir() or not path.parent.is_dir():
        raise OutputError(f"--report {path}: {'is a directory' if path.is_dir() else 'its folder does not exist'}")


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write a report's JSON (`to_json()`) atomically (a reader never sees half a file)."""
    try:
        atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    except OSError as err:
        raise OutputError(f"--report {path}: cannot write ({err.strerror})") from None
