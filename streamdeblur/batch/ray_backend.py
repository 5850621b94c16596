"""`--ray ADDRESS`: the files of a batch as Ray tasks across a cluster (extra `streamdeblur[ray]`).

Each task asks for one GPU (`num_gpus=1`) when the cluster has GPUs, a node's CPUs otherwise,
and processes a chunk of files with the same code as a local batch: a video per task, or a
few images (so they can share a batch through the model). Tasks keep their worker process
(`max_calls=0`; Ray's default for GPU tasks would start a new process, and load the model
again, for every file), and the loaded model is cached per process: one model instance
per GPU (or per CPU node). Every node must see IN_DIR and OUT_DIR at the same paths (a shared file system)
and have streamdeblur installed; results and failures come back into the same report.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace
from typing import Any

from streamdeblur.batch.local import TICK, Monitor, largest_size, run_items, start_servers
from streamdeblur.batch.plan import Item
from streamdeblur.batch.server import InferenceServer
from streamdeblur.core.errors import StreamdeblurError, UsageError, first_line
from streamdeblur.pipeline.config import RunConfig

IMAGES_PER_TASK = 16
TASKS_PER_SLOT = 2  # tasks queued per GPU (or CPU) of the cluster: enough to keep it busy

_SERVERS: dict[tuple, InferenceServer] = {}  # per worker process: the model, loaded once


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'streamdeblur[ray]'") from None
    return ray


def process_chunk(items: list[Item], config: RunConfig, jobs: int | None, size: tuple[int, int]) -> list[Item]:
    """The Ray task: deblur `items` on this worker's model instance and return them updated.

    `size` is the largest frame of the whole batch, so every worker makes the same
    `--model auto` choice whatever chunk it gets first."""
    if threading.current_thread() is threading.main_thread():
        # Ray cancels a running task with a simulated Ctrl-C, which does nothing where SIGINT
        # is ignored (workers inherit that from a driver started in the background or by nohup).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    key = (config.model, config.weights, config.device, config.precision)
    if key not in _SERVERS:
        (_SERVERS[key],) = start_servers(config, size, jobs)
    run_items(items, [_SERVERS[key]], config, threading.Event())
    return items


def chunks(items: list[Item]) -> list[list[Item]]:
    """A video per task; images grouped, so a task's images can be batched through the model."""
    videos = [[item] for item in items if item.kind == "video"]
    images = [item for item in items if item.kind != "video"]
    return videos + [images[i : i + IMAGES_PER_TASK] for i in range(0, len(images), IMAGES_PER_TASK)]


def _error_line(err: BaseException) -> str:
    """A task's failure in one line: the original error's message where Ray wrapped one."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, StreamdeblurError):
        return str(cause)
    inner = cause or err
    text = str(inner).strip().splitlines()
    return f"ray task failed: {type(inner).__name__}: {text[-1] if text else ''}".rstrip(": ")


def run_ray(
    items: list[Item], config: RunConfig, address: str, jobs: int | None, abort: threading.Event, monitor: Monitor
) -> bool:
    """Fan `items` out over the cluster at ADDRESS (`local`: start one here); True if interrupted."""
    ray = import_ray()
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UsageError(f"--ray {address}: cannot connect ({first_line(err)})") from None
    finally:
        signal.signal(signal.SIGTERM, on_term)  # Ray installs its own, which exits without cleaning up
    try:
        resources = ray.cluster_resources()
        gpu = resources.get("GPU", 0) >= 1 and config.device != "cpu"
        task_config = replace(config, device="cuda" if gpu else "cpu")
        # Without GPUs a task takes a whole node's CPUs: one model per node, using all its cores
        # (two models on one CPU only compete: benchmarks/batch_throughput.py).
        cpus = 1 if gpu else max(1, int(min(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"])))
        task = ray.remote(max_calls=0)(process_chunk).options(num_gpus=1 if gpu else 0, num_cpus=cpus, max_retries=1)
        slots = int(resources["GPU"]) if gpu else max(1, int(resources.get("CPU", 1)) // cpus)
        size = largest_size(items)
        return _drive(
            ray, task, chunks(items), (task_config, jobs, size), max(1, slots * TASKS_PER_SLOT), abort, monitor
        )
    finally:
        ray.shutdown()


def _drive(ray, task, work, args, inflight, abort, monitor) -> bool:
    """Keep `inflight` tasks queued, collect each as it ends; Ctrl-C cancels those running."""
    pending: dict[Any, list[Item]] = {}
    work = list(reversed(work))
    interrupted = False
    while work or pending:
        try:
            while work and len(pending) < inflight and not abort.is_set():
                chunk = work.pop()
                pending[task.remote(chunk, *args)] = chunk
                for item in chunk:
                    monitor.started(item)
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=TICK)
            for ref in ready:
                _collect(ray, ref, pending.pop(ref), monitor)
            monitor.tick()
        except KeyboardInterrupt:
            interrupted = True
            abort.set()
            for ref in pending:
                ray.cancel(ref)
    return interrupted


def _collect(ray, ref, chunk: list[Item], monitor: Monitor) -> None:
    """Copy a finished task's results into the local items (or its failure onto each)."""
    try:
        done = ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        done = None
        for item in chunk:
            item.status, item.reason = "interrupted", "the batch was interrupted"
    except Exception as err:  # noqa: BLE001 - Ray wraps task errors, worker deaths, lost nodes
        done = None
        for item in chunk:
            item.fail(_error_line(err))
    for i, item in enumerate(chunk):
        if done is not None:
            vars(item).update(vars(done[i]))
        monitor.finished(item)
