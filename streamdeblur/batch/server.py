"""One model instance per device, shared by every file in flight on it.

A single thread runs all of the instance's forward passes, so inference is serialized while
the files' decode and encode threads keep working (that is where `--jobs` gains). Frames
waiting from different files that are independent (a non-recurrent model, or the first
frame of a shot: every image) and have the same size are stacked on the batch dimension
and run in one pass. Batches form by themselves when the model is the bottleneck: while
one pass runs, the other files queue their next frame. Each file keeps its own recurrent
state in its `SharedRunner`, swapped in for its frame.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

import numpy as np
import torch

from streamdeblur.engine import tiling
from streamdeblur.engine.build import Engine


@dataclass(eq=False)
class _Request:
    owner: SharedRunner
    image: np.ndarray
    observe: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None

    @property
    def independent(self) -> bool:
        """Can run in a batch: no previous frame to feed (or a model that takes none)."""
        return not self.observe and (not self.owner.spec.recurrent or self.owner.prev is None)

    @property
    def key(self) -> tuple:
        return self.image.shape, self.image.dtype


class InferenceServer:
    """Runs `engine`'s model for `jobs` files in flight on one thread (so at most `jobs`
    frames per pass)."""

    def __init__(self, engine: Engine, jobs: int) -> None:
        self.engine = engine
        self.runner = engine.runner
        self.jobs = max(1, jobs)
        self.active = 0  # files assigned to this instance now (the local scheduler's count)
        self.passes = 0  # forward passes run, and frames through them: the batching figures
        self.frames = 0
        self._queue: collections.deque[_Request] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._limits: dict[tuple, int] = {}
        self._thread = threading.Thread(target=self._serve, name="streamdeblur-model", daemon=True)
        self._thread.start()

    def submit(self, owner: SharedRunner, image: np.ndarray, observe: bool = False) -> np.ndarray | None:
        """Queue one frame and wait for its result (errors are raised in the caller's thread)."""
        request = _Request(owner, image, observe)
        with self._cond:
            if self._closed:
                raise RuntimeError("the model server is closed")
            self._queue.append(request)
            self._cond.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        """Finish the queued frames, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _serve(self) -> None:
        while batch := self._take():
            try:
                self._run(batch)
            except BaseException as err:  # noqa: BLE001 - handed to the files that asked
                for request in batch:
                    request.error = err
            finally:
                self.runner.prev = None  # a file's state lives in its SharedRunner only
                for request in batch:
                    request.done.set()

    def _take(self) -> list[_Request]:
        """The oldest request, with the queued independent ones of its size if it is one too."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return []
            first = self._queue.popleft()
            batch = [first]
            if first.independent:
                limit = self._limit(first)
                for request in list(self._queue):
                    if len(batch) >= limit:
                        break
                    if request.independent and request.key == first.key:
                        self._queue.remove(request)
                        batch.append(request)
            return batch

    def _limit(self, request: _Request) -> int:
        """Batch size for this frame size: `jobs`, fewer where GPU memory would not hold them."""
        if request.key not in self._limits:
            runner = self.runner
            need = tiling.frame_bytes(runner.spec, request.image.shape[:2], runner.dtype)
            self._limits[request.key] = max(1, min(self.jobs, tiling.memory_budget(runner.device) // max(need, 1)))
        return self._limits[request.key]

    def _run(self, batch: list[_Request]) -> None:
        runner = self.runner
        if len(batch) == 1:
            request = batch[0]
            runner.prev = request.owner.prev
            if request.observe:
                runner.observe(request.image)
                request.owner.prev = runner.prev
                return
            request.result = runner(request.image)
            request.owner.prev = runner.prev
        else:
            try:
                out = runner.batch(np.stack([r.image for r in batch]))
            except torch.OutOfMemoryError:
                self._limits[batch[0].key] = max(1, len(batch) // 2)
                torch.cuda.empty_cache()
                for request in batch:
                    self._run([request])
                return
            for i, request in enumerate(batch):
                request.result = out[i]
                request.owner.prev = runner.prev[i : i + 1] if runner.spec.recurrent else None
        self.passes += 1
        self.frames += len(batch)


class SharedRunner:
    """One file's handle on a shared model instance, with its own recurrent state.

    It offers what `FrameProcessor` and `Engine` use of a `ModelRunner` (`reset`, `observe`,
    calling it on a frame; `spec`, `device`, `precision`), so the ordinary file pipeline
    runs unchanged on top of the shared instance.
    """

    def __init__(self, server: InferenceServer) -> None:
        self.server = server
        self.spec = server.runner.spec
        self.device = server.runner.device
        self.precision = server.runner.precision
        self.prev: torch.Tensor | None = None

    def reset(self) -> None:
        self.prev = None

    def observe(self, image: np.ndarray) -> None:
        if self.spec.recurrent:
            self.server.submit(self, image, observe=True)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.server.submit(self, image)
