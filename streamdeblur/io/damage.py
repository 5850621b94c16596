"""Damaged inputs (cut short, corrupt packets) are processed anyway: nothing that decodes is lost.

A header's frame count is only a hint (AVI headers count empty chunks, for one), so it never
decides whether a file is whole. Damage is what reading the file shows: packets the demuxer
marks corrupt, packets the decoder rejects, frames it had to patch up, a demuxer that gives
up, or data that ends before the duration the container announced. Every frame that decodes
is written; the damage is reported as one warning line and as `input_damaged` in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import av


@dataclass
class Damage:
    """What was wrong with an input that was processed all the same."""

    frames_decoded: int
    frames_announced: int | None  # the container's count or an estimate from its duration: a hint
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        announced = f" of {self.frames_announced} announced" if self.frames_announced else ""
        return f"input is damaged ({'; '.join(self.problems)}): {self.frames_decoded}{announced} frames decoded"

    def report(self) -> dict[str, Any]:
        return {
            "frames_decoded": self.frames_decoded,
            "frames_announced": self.frames_announced,
            "problems": self.problems,
        }


@dataclass
class DamageWatch:
    """Collects the signs of damage while a file is demuxed and decoded.

    `start` and `duration` are what the container says of its data (seconds; a duration of 0
    if it does not say) and `slack` how far short of the end the last packet may stop
    (rounding, the last frame's length).
    """

    start: float
    duration: float
    slack: float
    reached: float = 0.0  # how far into the file demuxing got, in seconds
    corrupt_packets: int = 0
    rejected_packets: int = 0
    patched_frames: int = 0
    read_error: str | None = None

    def packet(self, packet: av.Packet) -> None:
        if packet.pts is not None and packet.time_base:
            self.reached = max(self.reached, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        self.corrupt_packets += packet.is_corrupt

    def frames(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        self.patched_frames += sum(frame.is_corrupt for frame in frames)
        return frames

    def verdict(self, decoded: int, announced: int | None) -> Damage | None:
        """The damage seen, or None for a whole file."""
        problems = [
            template.format(count, "" if count == 1 else "s")
            for count, template in (
                (self.corrupt_packets, "{} corrupt packet{}"),
                (self.rejected_packets, "{} packet{} the decoder rejected"),
                (self.patched_frames, "{} frame{} decoded with errors"),
            )
            if count
        ]
        if self.read_error:
            problems.append(f"reading stopped: {self.read_error}")
        if self.duration and self.reached < self.start + self.duration - self.slack:
            problems.append(f"the data ends at {self.reached - self.start:.2f} s of {self.duration:.2f} s")
        return Damage(decoded, announced, problems) if problems else None
