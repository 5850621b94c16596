"""Files on one machine: one model instance per device, `--jobs` files in flight on each.

Every file runs through the ordinary file pipeline (`run_file`) on a worker thread, with a
`SharedRunner` onto its device's `InferenceServer` as its model; while one file's frame is
in the model, the others decode and encode. An interruption aborts the files in flight
(their outputs never reach their final names) and starts no new ones.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import replace
from typing import Callable, Protocol

import torch

from streamdeblur.batch.plan import Item, open_item
from streamdeblur.batch.server import InferenceServer, SharedRunner
from streamdeblur.core.errors import StreamdeblurError
from streamdeblur.core.files import create_parents
from streamdeblur.engine.build import Engine, build_engine
from streamdeblur.file import run_file
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.stats import RunStats

TICK = 0.1  # seconds between progress refreshes
GPU_JOBS = 2  # default files in flight per GPU: one decodes and encodes while another is in the model
DEFAULT_SIZE = (1280, 720)  # for `--model auto` when no input told its size


class Monitor(Protocol):
    """What the executors report to (the display, the manifest); called from worker threads."""

    def started(self, item: Item) -> None: ...
    def progress(self, item: Item, stats: RunStats) -> None: ...
    def finished(self, item: Item) -> None: ...
    def tick(self) -> None: ...


def model_devices(device: str) -> list[str]:
    """`auto` or `cuda` on a machine with several GPUs: all of them; otherwise the one device."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [device]


def largest_size(items: list[Item]) -> tuple[int, int]:
    """The biggest frame among `items`: what `--model auto` must fit in memory."""
    sizes = [item.size for item in items if item.size]
    return max(sizes, key=lambda s: s[0] * s[1]) if sizes else DEFAULT_SIZE


def default_jobs(engine: Engine) -> int:
    """`--jobs` unset: 2 files per GPU, so it does not wait while a file decodes and encodes;
    1 on a CPU, where the model already uses every core (a second file made CPU runs slower:
    benchmarks/batch_throughput.py)."""
    return GPU_JOBS if engine.runner.device.type == "cuda" else 1


def start_servers(config: RunConfig, size: tuple[int, int], jobs: int | None) -> list[InferenceServer]:
    """Load the model once per device (with --model auto, one that fits frames of `size`)."""
    engines = [build_engine(replace(config, device=d), size) for d in model_devices(config.device)]
    return [InferenceServer(engine, jobs or default_jobs(engine)) for engine in engines]


def process_item(
    item: Item,
    server: InferenceServer,
    config: RunConfig,
    abort: threading.Event,
    on_tick: Callable[[RunStats], None] | None = None,
) -> None:
    """Deblur one file into `item.dst` and record the outcome in `item`; never raises for
    a bad input (one broken file must not stop the batch)."""
    engine = replace(server.engine, runner=SharedRunner(server))
    start = time.perf_counter()
    try:
        item.created = create_parents(item.dst)  # removed at the end of the batch if nothing came
        result = run_file(
            open_item(item),
            str(item.dst),
            config,
            on_start=lambda info, engine, warnings: item.warnings.extend(warnings),
            on_tick=on_tick,
            engine=engine,
            abort=abort,
        )
    except StreamdeblurError as err:
        item.fail(str(err))
    except OSError as err:
        item.fail(f"{err.filename or item.dst}: {err.strerror or err}")
    except Exception as err:  # noqa: BLE001 - an unforeseen failure is still one file's
        item.fail(f"{type(err).__name__}: {err}")
    else:
        item.stats, item.frames = result.stats, result.stats.frames_out
        item.status = "done" if result.completed else "interrupted"
        if result.stats.damage:  # done all the same: every frame that decodes was written
            item.warnings.append(result.stats.damage.message)
    item.engine = engine.report_fields()
    item.seconds = time.perf_counter() - start


def run_items(
    items: list[Item],
    servers: list[InferenceServer],
    config: RunConfig,
    abort: threading.Event,
    monitor: Monitor | None = None,
) -> bool:
    """Process `items` with each server's `jobs` files in flight on it; True if interrupted.

    The calling (main) thread only waits and refreshes the monitor; Ctrl-C or SIGTERM there
    sets `abort`, which cancels the files in flight and lets the workers run out.
    """
    if not items:
        return False
    todo = collections.deque(items)
    lock = threading.Lock()
    workers = min(len(items), sum(server.jobs for server in servers))
    remaining = workers
    all_done = threading.Event()

    def work() -> None:
        nonlocal remaining
        try:
            while not abort.is_set():
                with lock:
                    if not todo:
                        return
                    item = todo.popleft()
                    server = min(servers, key=lambda s: s.active / s.jobs)
                    server.active += 1
                if monitor:
                    monitor.started(item)
                try:
                    process_item(
                        item, server, config, abort, (lambda s, i=item: monitor.progress(i, s)) if monitor else None
                    )
                finally:
                    with lock:
                        server.active -= 1
                if monitor:
                    monitor.finished(item)
        finally:
            with lock:
                remaining -= 1
                if not remaining:
                    all_done.set()

    for n in range(workers):
        threading.Thread(target=work, name=f"streamdeblur-file{n}", daemon=True).start()
    interrupted = False
    while not all_done.is_set():
        try:
            all_done.wait(TICK)
            if monitor:
                monitor.tick()
        except KeyboardInterrupt:
            interrupted = True
            abort.set()
    for item in items:
        if item.status == "pending" and abort.is_set():
            item.reason = "not started: the batch was interrupted"
    return interrupted or abort.is_set()
