"""Files and folders as users expect them.

What a file is by its name (image and video extensions) and whether it can be read at all
are answered here, beneath the readers, so that reading photos needs no FFmpeg.

Files are written so that nobody ever sees half of one (under a `.partial` name, renamed when
complete) and end up with the mode the umask gives, like any file a program creates: some
writers (safetensors, for one) create their files 0600, which would hide our outputs from
the user's group. Folders an output needs are created, and removed again when the output
never came.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from streamdeblur.core.errors import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"}
# Extensions that name videos (batch still probes every other file with FFmpeg).
VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".flv", ".wmv", ".asf", ".3gp", ".ogv", ".mxf", ".vob", ".dv", ".y4m", ".gif",
}  # fmt: skip


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete: same folder and extension, `.partial` stem."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


@functools.cache
def file_mode() -> int:
    """0o666 less the process umask: the mode `open()` gives a new file.

    Read from /proc where it can be: setting the umask to read it back would, for a moment,
    give files other threads create another mode (the stricter 0o077 there, if it must).
    """
    try:
        match = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        mask = int(match.group(1), 8)
    else:
        mask = os.umask(0o077)
        os.umask(mask)
    return 0o666 & ~mask


def publish(temp: Path, path: Path) -> None:
    """Give the complete file `temp` the umask's mode and move it to `path` in one step."""
    os.chmod(temp, file_mode())
    os.replace(temp, path)


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Let `write` create the file at a temporary name, then `publish` it (a reader sees the old
    file or the new one); a failed write (disk full) leaves the old file and no partial one."""
    temp = partial_path(path)
    try:
        write(temp)
        publish(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (see `atomic_write`)."""
    atomic_write(path, lambda temp: temp.write_text(text))


def create_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; returns them, for `remove_empty`."""
    missing = [folder for folder in path.parents if not folder.is_dir()]
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove those of `folders` that are empty, deepest first: folders created for outputs
    that never came. A folder something else wrote into stays."""
    for folder in sorted(set(folders), key=lambda f: len(f.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def check_readable(path: Path) -> None:
    """A one-line error unless `path` is a non-empty file we may read."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory (use `streamdeblur batch` for folders)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
