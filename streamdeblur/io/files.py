"""Files written so that nobody ever sees half of one: write under a `.partial` name, rename."""

from __future__ import annotations

from pathlib import Path


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete: same folder and extension, `.partial` stem."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (a reader sees the old file or the new one);
    a failed write (disk full) leaves the old file and no partial one."""
    temp = partial_path(path)
    try:
        temp.write_text(text)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
