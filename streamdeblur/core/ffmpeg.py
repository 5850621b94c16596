"""FFmpeg's error messages in the user's terms (sources, sinks and live outputs all report them)."""

from __future__ import annotations


def ffmpeg_reason(err: Exception) -> str:
    """FFmpeg's message without the path and errno noise PyAV adds."""
    return getattr(err, "strerror", None) or str(err)
