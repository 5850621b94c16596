"""The threaded pipeline that every mode runs frames through.

    decode thread ──q_in──▶ process thread (gate → denoise → model) ──q_out──▶ encode thread

The main thread only watches: it refreshes the status line and turns Ctrl-C into a graceful
stop. A stop ends decoding at once, lets the frames already processed reach the sinks, and
finishes them, so the output plays; frames read but not yet processed are counted as dropped
(`frames_in` = `frames_out` + `frames_dropped`, always). An error in any thread cancels
everything and aborts the sinks, so a failed run leaves no half file behind.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from streamdeblur.core.frame import Frame
from streamdeblur.io.sinks import Sink
from streamdeblur.io.sources import Source
from streamdeblur.pipeline.queues import StageQueue
from streamdeblur.pipeline.stats import RunStats

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
