"""`--manifest PATH`: a JSON Lines log of every input's classification and outcome.

On a very large tree it saves a rerun from probing every file again: an input whose size
and modification time are unchanged reuses what was learnt about it (its kind, frame
count and size, or that it is not media at all). One line is appended as each file
finishes, so the file is also a progress log (`tail -f`); the last line for an input wins.
A run starts by rewriting the manifest compacted (atomically), so it does not grow without
bound over reruns, and a line cut short by a killed run is ignored.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from streamdeblur.batch.plan import Item
from streamdeblur.core.files import atomic_write_text


def _stamp(path: Path) -> tuple[int | None, int | None]:
    """Size and modification time: what tells an unchanged input (None: it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._file = None
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    self.records[record["input"]] = record
                except (ValueError, KeyError, TypeError):
                    continue  # the last line of a killed run, or not ours

    def recall(self, item: Item) -> bool:
        """Fill `item` from an earlier run if the input is unchanged; False if it must be probed."""
        record = self.records.get(item.rel.as_posix())
        if record is None or [record.get("bytes"), record.get("mtime_ns")] != list(_stamp(item.src)):
            return False
        if record.get("kind") is None:
            if record.get("status") != "skipped":
                return False  # failed to open last time: look again, it may have been fixed
            item.skip(record.get("reason") or "not a video or image")
            return True
        item.kind, item.frames_total = record["kind"], record.get("frames_total")
        item.size = tuple(record["size"]) if record.get("size") else None
        return True

    def start(self, items: list[Item]) -> None:
        """Rewrite compacted with this run's plan, then keep the file open for appending."""
        atomic_write_text(self.path, "".join(json.dumps(self._record(item)) + "\n" for item in items))
        self._file = open(self.path, "a")

    def update(self, item: Item) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(json.dumps(self._record(item)) + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @staticmethod
    def _record(item: Item) -> dict[str, Any]:
        size, mtime = _stamp(item.src)
        return {
            "input": item.rel.as_posix(),
            "bytes": size,
            "mtime_ns": mtime,
            "kind": item.kind,
            "frames_total": item.frames_total,
            "size": list(item.size) if item.size else None,
            "status": item.status,
            "error": item.error,
            "reason": item.reason,
            "frames": item.frames,
            "seconds": round(item.seconds, 3),
        }
