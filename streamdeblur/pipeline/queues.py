"""Bounded queues between pipeline threads that never block for ever.

Memory stays flat on long 4K input because every hand-over is bounded. A blocked `put` or
`get` wakes up when the run is stopped or cancelled, so no thread can hang a shutdown.
File mode blocks the producer when a queue is full (no frame is ever lost); live mode
keeps the newest frames and counts what it drops.
"""

from __future__ import annotations

import collections
import threading
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class StageQueue(Generic[T]):
    """A bounded FIFO with a `close()` end marker and an external `halt` event.

    `drop_oldest=True` makes `put` never wait: when full, the oldest item is discarded and
    counted in `dropped`.
    """

    def __init__(self, maxsize: int, halt: threading.Event, drop_oldest: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._halt = halt
        self._items: collections.deque[T] = collections.deque()
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Add an item; False if the run was halted before there was room."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if self.drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                if self._halt.is_set():
                    return False
                self._cond.wait(0.05)
            self._items.append(item)
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """No more items will come; readers finish once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        """Items in order until the queue is closed and empty, or the run is halted."""
        while True:
            with self._cond:
                while not self._items and not self._closed and not self._halt.is_set():
                    self._cond.wait(0.05)
                if self._halt.is_set() or not self._items:
                    return
                item = self._items.popleft()
                self._cond.notify_all()
            yield item
