"""The preview window. OpenCV's HighGUI is not thread-safe, so the window is drawn by the main
thread (`show`); the sink itself only keeps the newest frame.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.core.errors import OutputError
from streamdeblur.core.frame import Frame
from streamdeblur.io.sinks.base import Sink


class PreviewWindow(Sink):
    """An OpenCV window with the newest output frame; `s` shows input and output side by side,
    `q` or Esc ends the run. `show()` must be called from the main thread."""

    TITLE = "streamdeblur (s: side by side, q: quit)"

    def __init__(self) -> None:
        self.path = Path("preview")
        self.warnings = []
        self.quit = False
        self.side_by_side = False
        self._latest: Frame | None = None
        self._shown: Frame | None = None

    def write(self, frame: Frame) -> None:
        self._latest = frame

    def show(self) -> None:
        frame = self._latest
        if frame is not None and frame is not self._shown:
            image = frame.image
            if self.side_by_side and frame.original is not None:
                image = np.hstack([frame.original, image])
            cv2.imshow(self.TITLE, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            self._shown = frame
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or (self._shown and cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1):
            self.quit = True
        elif key == ord("s"):
            self.side_by_side = not self.side_by_side
            self._shown = None

    def close(self) -> None:
        cv2.destroyAllWindows()

    def finish(self) -> None:
        pass  # the window belongs to the main thread: closed there by `close()`

    def abort(self) -> None:
        pass


def check_display() -> None:
    """Fail with one line, before anything starts, where no window can be opened.

    OpenCV's Qt backend aborts the whole process when it cannot reach the X server, so on
    Linux the display is checked first: DISPLAY must be set and its X server must accept a
    connection.
    """
    if not sys.platform.startswith("linux"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise OutputError("--preview needs a display: DISPLAY is not set (record with -o instead)")
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except (OSError, ValueError):
        raise OutputError(f"--preview needs a display: cannot connect to X display {display}") from None
