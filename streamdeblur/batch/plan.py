"""What a batch will do: walk IN_DIR, classify every file, name its output, and decide what is
already done.

A file is a video when FFmpeg can open it as one (whatever its extension), an image when it
has an image extension or FFmpeg recognises an image in it, and otherwise neither (skipped
and listed). A file that looks like media (a video or image extension, an MP4/Matroska/AVI
signature) but cannot be read is a failure, not a skip: it is probably a broken copy of
something the user wanted processed.

Outputs only ever appear at their final names complete (sinks write `NAME.partial.EXT` and
rename), so "the output exists" is what "done" means; leftover partial files of a killed
run are removed here and their inputs redone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from streamdeblur.core.errors import InputError, OutputError, UsageError
from streamdeblur.core.files import partial_path
from streamdeblur.core.report import EngineFields
from streamdeblur.io.containers import VIDEO_CONTAINERS, can_hold
from streamdeblur.io.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ImageSource, Source, VideoFileSource
from streamdeblur.pipeline.stats import RunStats

# A video keeps its container when the tool writes it (`VIDEO_CONTAINERS`) and it can hold
# `--codec`; every other one becomes .mkv.
FALLBACK_CONTAINER = ".mkv"  # Matroska holds any codec and every audio/subtitle stream
DEFAULT_IMAGE_FORMAT = ".png"  # for images found by content under a name that is not an image's

STATUSES = ("done", "skipped", "failed", "interrupted", "pending")


@dataclass
class Item:
    """One input file, what it is, where its output goes and how its processing went."""

    src: Path
    rel: Path  # relative to IN_DIR; the output mirrors it under OUT_DIR
    kind: str | None = None  # "video", "image", or None (neither)
    dst: Path | None = None
    status: str = "pending"
    error: str | None = None  # failed: the one-line reason
    reason: str | None = None  # skipped: why
    frames_total: int | None = None
    size: tuple[int, int] | None = None
    frames: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)  # folders made for `dst`
    stats: RunStats | None = None
    engine: EngineFields | None = None  # the model, weights, device, precision that ran it

    def skip(self, reason: str) -> None:
        self.status, self.reason = "skipped", reason

    def fail(self, message: str) -> None:
        """Record a failure; the input's path is dropped from the message (the entry has it)."""
        prefix = f"{self.src}: "
        self.status, self.error = "failed", message[len(prefix) :] if message.startswith(prefix) else message


@dataclass
class NamingRules:
    """How output names are made: OUT_DIR / same folders / stem + suffix + extension."""

    out_dir: Path
    suffix: str = ""
    image_format: str | None = None  # ".png"; None keeps the input's
    video_format: str | None = None  # ".mkv"; None keeps the input's container where possible
    codec: str | None = None  # --codec; None: each container's default

    def output_for(self, rel: Path, kind: str) -> Path:
        ext = rel.suffix
        if kind == "image":
            ext = self.image_format or (ext if ext.lower() in IMAGE_EXTENSIONS else DEFAULT_IMAGE_FORMAT)
        else:
            ext = self.video_format or (ext if keeps_container(ext, self.codec) else FALLBACK_CONTAINER)
        return self.out_dir / rel.parent / f"{rel.stem}{self.suffix}{ext}"


def keeps_container(ext: str, codec: str | None) -> bool:
    """Whether a video can be written as `ext`: the tool writes it and it holds `codec`."""
    muxer = VIDEO_CONTAINERS.get(ext.lower())
    return muxer is not None and (codec is None or can_hold(muxer, codec))


def walk(in_dir: Path, exclude: Path | None = None) -> Iterator[Path]:
    """Files under `in_dir` in sorted order; hidden entries, the tool's own `*.partial.*`
    files and the `exclude` subtree (an OUT_DIR inside IN_DIR) are left out."""
    skip = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(in_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and not Path(name).stem.endswith(".partial") and path.is_file():
                yield path


def looks_like_media(path: Path) -> bool:
    """A video/image extension or a video container signature: unreadable means broken."""
    if path.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:11] == b"AVI")


def probe(item: Item) -> None:
    """Classify `item` with FFmpeg: kind, frame count and size (cheap: headers only)."""
    image_name = item.src.suffix.lower() in IMAGE_EXTENSIONS
    try:
        source = VideoFileSource(item.src)
    except InputError as err:
        if image_name and item.src.stat().st_size > 0:
            item.kind, item.frames_total = "image", 1  # decoded by OpenCV later, which says if it can
        elif looks_like_media(item.src):
            item.kind = "image" if image_name else "video"
            item.fail(str(err))
        else:
            item.skip(str(err).removeprefix(f"{item.src}: "))
        return
    with source:
        info = source.info
        still = source.container.format.name == "image2" or source.container.format.name.endswith("_pipe")
        item.kind = "image" if image_name or still else "video"
        item.frames_total = 1 if item.kind == "image" else info.frame_count
        item.size = info.size


def open_item(item: Item) -> Source:
    """The source for a classified item: by what it is, not by its extension."""
    return ImageSource(item.src) if item.kind == "image" else VideoFileSource(item.src)


def check_dirs(in_dir: Path, out_dir: Path, suffix: str) -> None:
    """Refuse before any work: a missing IN_DIR, an OUT_DIR that is a file, outputs that
    would replace their inputs."""
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: {'not a directory' if in_dir.exists() else 'no such directory'}")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory")
    if out_dir.resolve() == in_dir.resolve() and not suffix:
        raise UsageError("OUT_DIR is IN_DIR: give a --suffix so outputs do not replace their inputs")


def assign_outputs(items: list[Item], rules: NamingRules, overwrite: bool) -> None:
    """Name each item's output; skip finished ones, refuse name clashes, clear leftovers.

    An input that is itself another input's output (OUT_DIR = IN_DIR with a suffix, on a
    rerun) is skipped, so outputs are never processed again.
    """
    media = [i for i in items if i.kind is not None and i.status == "pending"]
    for item in media:
        item.dst = rules.output_for(item.rel, item.kind)
    targets = {item.dst.resolve(): item for item in media}
    for item in media:
        owner = targets.get(item.src.resolve())
        if owner is not None and owner is not item:
            item.skip(f"output of {owner.rel}")
    claimed: dict[Path, Item] = {}
    for item in media:
        if item.status != "pending":
            continue
        key = item.dst.resolve()
        if key in claimed:
            item.fail(f"same output name {item.dst.name} as {claimed[key].rel} (use --format or rename one)")
            continue
        claimed[key] = item
        partial_path(item.dst).unlink(missing_ok=True)  # a killed run's unfinished output
        if item.dst.exists() and not overwrite:
            item.skip("output exists")
