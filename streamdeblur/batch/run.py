"""The batch job from start to end: plan, process (locally or on Ray), report, exit code."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from streamdeblur.batch.display import BatchDisplay
from streamdeblur.batch.local import largest_size, run_items, start_servers
from streamdeblur.batch.manifest import Manifest
from streamdeblur.batch.plan import Item, NamingRules, assign_outputs, check_dirs, keeps_container, probe, walk
from streamdeblur.batch.report import batch_report
from streamdeblur.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, OutputError, UsageError
from streamdeblur.core.files import remove_empty
from streamdeblur.io.containers import VIDEO_CONTAINERS, video_encoder
from streamdeblur.io.sources import IMAGE_EXTENSIONS
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.stats import write_report


@dataclass
class BatchOptions:
    in_dir: Path
    out_dir: Path
    suffix: str = ""
    formats: tuple[str, ...] = ()
    jobs: int | None = None  # files in flight per model instance; None: local.default_jobs
    manifest: Path | None = None
    ray: str | None = None
    report: Path | None = None
    quiet: bool = False


def naming_rules(options: BatchOptions, config: RunConfig) -> NamingRules:
    """`--format` values: an image extension sets the images' format, a video container the
    videos'; each at most once. An unknown `--codec` is refused here, before any work."""
    codec = config.encode.codec
    rules = NamingRules(options.out_dir, options.suffix, codec=codec)
    if "/" in options.suffix or "\\" in options.suffix:
        raise UsageError(f"--suffix {options.suffix!r}: must not contain a path separator")
    if codec is not None:
        video_encoder(codec)
    for value in options.formats:
        ext = "." + value.lower().lstrip(".")
        if ext in IMAGE_EXTENSIONS and rules.image_format is None:
            rules.image_format = ext
        elif ext in VIDEO_CONTAINERS and rules.video_format is None:
            if not keeps_container(ext, codec):
                raise UsageError(f"--format {value}: {ext} cannot hold {codec} video")
            rules.video_format = ext
        else:
            known = ", ".join(sorted(e[1:] for e in IMAGE_EXTENSIONS | set(VIDEO_CONTAINERS)))
            raise UsageError(f"--format {value}: use one image and/or one video format ({known})")
    return rules


class _Tracker:
    """The monitor the executors report to: the display, and the manifest as files finish."""

    def __init__(self, display: BatchDisplay, manifest: Manifest | None) -> None:
        self.display, self.manifest = display, manifest
        self.started, self.progress, self.tick = display.started, display.progress, display.tick

    def finished(self, item: Item) -> None:
        self.display.finished(item)
        if self.manifest:
            self.manifest.update(item)


def plan_items(options: BatchOptions, rules: NamingRules, overwrite: bool, manifest: Manifest | None) -> list[Item]:
    in_dir, out_dir = options.in_dir, options.out_dir
    inside = out_dir.resolve() != in_dir.resolve() and out_dir.resolve().is_relative_to(in_dir.resolve())
    items = [Item(path, path.relative_to(in_dir)) for path in walk(in_dir, exclude=out_dir if inside else None)]
    for item in items:
        if manifest is None or not manifest.recall(item):
            probe(item)
    assign_outputs(items, rules, overwrite)
    return items


def run_batch(options: BatchOptions, config: RunConfig) -> int:
    """Process the tree; exit code 0 (all done), 3 (some inputs failed) or 130 (interrupted)."""
    check_dirs(options.in_dir, options.out_dir, options.suffix)
    rules = naming_rules(options, config)
    if options.ray:
        from streamdeblur.batch.ray_backend import import_ray, run_ray

        import_ray()  # before any work: a missing extra is a usage error
    display = BatchDisplay(options.quiet)
    start = time.perf_counter()
    manifest = Manifest(options.manifest) if options.manifest else None
    with display.console.status("scanning…") if not options.quiet else contextlib.nullcontext():
        items = plan_items(options, rules, config.overwrite, manifest)
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{options.out_dir}: cannot create ({err.strerror})") from None
    if manifest:
        manifest.start(items)
    display.plan(items, options.in_dir, options.out_dir)
    todo = [item for item in items if item.status == "pending"]
    abort = threading.Event()
    tracker = _Tracker(display, manifest)
    interrupted = False
    batching = None
    try:
        if options.ray and todo:
            display.start(sum(i.frames_total or 0 for i in todo))
            interrupted = run_ray(todo, config, options.ray, options.jobs, abort, tracker)
        elif todo:
            servers = start_servers(config, largest_size(todo), options.jobs)
            display.model([s.engine for s in servers])
            display.start(sum(i.frames_total or 0 for i in todo))
            try:
                interrupted = run_items(todo, servers, config, abort, tracker)
            finally:
                for server in servers:
                    server.close()
                batching = {"passes": sum(s.passes for s in servers), "frames": sum(s.frames for s in servers)}
    finally:
        display.stop()
        if manifest:
            manifest.close()
        remove_empty(folder for item in items if item.status != "done" for folder in item.created)
    seconds = time.perf_counter() - start
    if options.report:
        report = batch_report(items, options.in_dir, options.out_dir, seconds, batching)
        write_report(options.report, report.to_json())
    display.summary(items, seconds, options.out_dir, interrupted)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PARTIAL if any(item.status == "failed" for item in items) else EXIT_OK
