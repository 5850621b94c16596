"""The threaded pipeline and the file job built on it.

    decode thread ──q_in──▶ process thread (gate → denoise → model) ──q_out──▶ encode thread

The main thread only watches: it refreshes the status line and turns Ctrl-C into a graceful
stop. A stop ends decoding at once, lets the frames already processed reach the sinks, and
finishes them, so the output plays; frames read but not yet processed are counted as dropped
(`frames_in` = `frames_out` + `frames_dropped`, always). An error in any thread cancels
everything and aborts the sinks, so a failed run leaves no half file behind.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from streamdeblur import hardware
from streamdeblur.denoise import DENOISERS
from streamdeblur.io.files import remove_empty
from streamdeblur.io.frame import Frame
from streamdeblur.io.sinks import EncodeOptions, Sink, check_output, open_sink
from streamdeblur.io.sources import Source, SourceInfo, open_source
from streamdeblur.models import ModelSpec, get_spec
from streamdeblur.pipeline.queues import StageQueue
from streamdeblur.pipeline.stages import FrameProcessor, ModelRunner
from streamdeblur.pipeline.stats import RunStats
from streamdeblur.weights import find_default_weights, load_model, resolve_weights

QUEUE_SIZE = 4  # frames per hand-over: enough to overlap stages, small enough for 4K memory


class Pipeline:
    """Runs `process` over a source's frames on three threads and writes them to the sinks."""

    def __init__(
        self,
        source: Source,
        sinks: Iterable[Sink],
        process: Callable[[Frame], Frame],
        stats: RunStats,
        queue_size: int = QUEUE_SIZE,
        live: bool = False,
    ) -> None:
        self.source = source
        self.sinks = list(sinks)
        self.process = process
        self.stats = stats
        self.live = live  # live sources wait for frames: they time their own decoding
        self.stop = threading.Event()  # graceful: no new frames, finish what is processed
        self.cancel = threading.Event()  # error: drop everything
        self.q_in: StageQueue[Frame] = StageQueue(queue_size, self.stop, drop_oldest=live)
        self.q_out: StageQueue[Frame] = StageQueue(queue_size, self.cancel)
        self.errors: list[BaseException] = []
        self.completed = False  # the sinks were finished: the output is at its final name
        source.attach(self.stop, stats.stages["decode"])  # a stream's reader must not outlive a stop

    def _fail(self, err: BaseException) -> None:
        self.errors.append(err)
        self.cancel.set()
        self.stop.set()

    def _decode(self) -> None:
        frames = iter(self.source.frames())
        timer = self.stats.stages["decode"]
        try:
            while not self.stop.is_set():
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                if not self.live:
                    timer.add(time.perf_counter() - start)
                self.stats.frames_in += 1
                if not self.q_in.put(frame):
                    break
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self._fail(err)
        finally:
            self.q_in.close()
            close = getattr(frames, "close", None)
            if close:
                close()

    def _process(self) -> None:
        try:
            for frame in self.q_in:  # ends at a stop, once the frame in hand is through
                self.q_out.put(self.process(frame))
        except BaseException as err:  # noqa: BLE001
            self._fail(err)
        finally:
            self.q_out.close()

    def _encode(self) -> None:
        timer = self.stats.stages["encode"]
        try:
            for frame in self.q_out:
                with timer.time():
                    for sink in self.sinks:
                        sink.write(frame)
                self.stats.frame_written(frame)
            if not self.cancel.is_set():
                for sink in self.sinks:
                    sink.finish()
                self.completed = True
        except BaseException as err:  # noqa: BLE001
            self._fail(err)

    def run(
        self, on_tick: Callable[[], None] | None = None, tick: float = 0.1, abort: threading.Event | None = None
    ) -> bool:
        """Run to the end; returns True if the run was interrupted (Ctrl-C) and finished early.

        Errors from the worker threads are re-raised here after the sinks were aborted. With
        `abort` (batch mode), an interruption cancels instead: setting the event, or Ctrl-C
        here, aborts the sinks, so unfinished work never reaches its final name.
        """
        workers = (self._decode, self._process, self._encode)
        done = [threading.Event() for _ in workers]
        for target, finished in zip(workers, done, strict=True):
            threading.Thread(
                target=_signal_when_done(target, finished), name=f"streamdeblur{target.__name__}", daemon=True
            ).start()
        interrupted = False
        # Wait on events, not Thread.join: a join interrupted by Ctrl-C can leave is_alive() False
        # for a thread that is still finishing the output file.
        while True:
            try:
                if all(event.is_set() for event in done):
                    break
                if abort is not None and abort.is_set() and not self.cancel.is_set():
                    interrupted = True
                    self.cancel.set()
                    self.stop.set()
                done[-1].wait(tick)
                if on_tick:
                    on_tick()
            except Exception as err:  # noqa: BLE001 - a failing status display or preview ends the run cleanly
                self._fail(err)
            except KeyboardInterrupt:
                if abort is not None:
                    abort.set()
                elif interrupted:  # a second Ctrl-C: stop waiting for the frames in flight
                    self.cancel.set()
                interrupted = True
                self.stop.set()
        self.stats.finished = time.perf_counter()
        # Live drops to keep up, and after a stop the frames still queued (or in hand when it came).
        self.stats.frames_dropped = self.stats.frames_in - self.stats.frames_out
        self.stats.damage = self.source.damage
        if self.errors:
            for sink in self.sinks:
                sink.abort()
            raise self.errors[0]
        if self.cancel.is_set():
            for sink in self.sinks:
                sink.abort()
        return interrupted


def _signal_when_done(target: Callable[[], None], finished: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            target()
        finally:
            finished.set()

    return run


@dataclass
class RunConfig:
    """Options shared by the file, live and batch commands."""

    model: str = "auto"
    weights: str | None = None
    device: str = "auto"
    precision: str = "auto"
    selective: bool = False
    blur_threshold: float | None = None  # None: auto
    denoise: str = "none"  # a name in denoise.DENOISERS, or none
    denoise_strength: float = 1.0
    overwrite: bool = False
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    record_frames: bool = True  # per-frame records, for the report only: long runs without one keep none

    def denoiser(self, device: torch.device) -> Callable[[np.ndarray], np.ndarray] | None:
        """The `--denoise` stage for frames of a model on `device` (TV runs there too)."""
        if self.denoise == "none":
            return None
        return functools.partial(DENOISERS[self.denoise], strength=self.denoise_strength, device=device)


@dataclass
class Engine:
    """A model chosen and loaded for a device: what every job needs before the first frame."""

    runner: ModelRunner
    weights: str
    fallback: str | None
    reason: str
    warnings: list[str] = field(default_factory=list)  # options that are a bad idea on this hardware

    @property
    def description(self) -> str:
        r = self.runner
        return f"{r.spec.name} on {hardware.describe_device(r.device)} {r.precision}"

    def report_fields(self) -> dict[str, Any]:
        r = self.runner
        return {
            "model": r.spec.name,
            "weights": self.weights,
            "device": str(r.device),
            "precision": r.precision,
            "fallback": self.fallback,
        }


def has_weights(config: RunConfig) -> Callable[[ModelSpec], bool]:
    """Which models `--model auto` may pick: those with default weights installed (with an
    explicit --weights, any: the weights say whose they are when loaded)."""
    return lambda spec: config.weights is not None or find_default_weights(spec) is not None


def load_engine(config: RunConfig, frame_size: tuple[int, int]) -> Engine:
    """Resolve device, precision and model (auto picks by hardware and installed weights), load weights."""
    device = hardware.resolve_device(config.device)
    precision = hardware.resolve_precision(config.precision, device)
    choice = hardware.choose_model(config.model, device, frame_size, precision, has_weights(config))
    spec = get_spec(choice.name)
    weights = resolve_weights(spec, config.weights or "default")
    model = load_model(spec.name, weights)
    runner = ModelRunner(model.for_inference(), spec, device, precision)
    engine = Engine(runner, str(weights), choice.fallback, choice.reason)
    slow = choice.reason == "requested" and hardware.unsuitable(spec, device, frame_size, precision)
    if slow:
        engine.warnings.append(slow)
    return engine


@dataclass
class RunResult:
    """How a job went: its statistics, the engine that ran it, and whether it was cut short."""

    stats: RunStats
    engine: Engine
    interrupted: bool
    completed: bool  # OUTPUT is complete at its final name (also after a graceful interrupt)

    def report(self) -> dict[str, Any]:
        return self.stats.report(**self.engine.report_fields())


def run_file(
    input_uri: str | Source,
    output: str,
    config: RunConfig,
    on_start: Callable[[SourceInfo, Engine, list[str]], None] | None = None,
    on_tick: Callable[[RunStats], None] | None = None,
    engine: Engine | None = None,
    abort: threading.Event | None = None,
) -> RunResult:
    """Deblur one video, image or image sequence (a URI, or a `Source` already opened) into OUTPUT.

    The output is complete and playable also when the run was interrupted (Ctrl-C); on an
    error nothing is left at OUTPUT (not even the folders made for it) and an existing file
    there is untouched; a damaged input is processed as far as it decodes (`stats.damage`).
    Pass an `engine` to reuse a loaded model across files (its recurrent state is reset), and
    `abort` to make an interruption discard the output instead (see `Pipeline.run`).
    """
    source = input_uri if isinstance(input_uri, Source) else open_source(input_uri)
    created: list[Path] = []
    pipeline: Pipeline | None = None
    try:
        created = check_output(output, source, config.overwrite, config.encode.codec)
        if engine is None:
            engine = load_engine(config, source.info.size)
        engine.runner.reset()
        stats = RunStats(frames_total=source.info.frame_count, record_frames=config.record_frames)
        processor = FrameProcessor(
            engine.runner, stats.stages, config.selective, config.blur_threshold, config.denoiser(engine.runner.device)
        )
        sink = open_sink(output, source, config.encode)
        try:
            if on_start:
                on_start(source.info, engine, [*engine.warnings, *sink.warnings])
            pipeline = Pipeline(source, [sink], processor, stats)
        except BaseException:  # nothing runs yet: the sink's partial file must go
            sink.abort()
            raise
        interrupted = pipeline.run(on_tick=(lambda: on_tick(stats)) if on_tick else None, abort=abort)
    finally:
        source.close()
        if pipeline is None or not pipeline.completed:
            remove_empty(created)
    return RunResult(stats, engine, interrupted, pipeline.completed)
