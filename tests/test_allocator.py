"""Per-frame page faults (issue #13): freed frame-sized buffers are reused, not faulted in again,
and each stream converts its frames with one swscale context."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from streamdeblur.io.colour import frame_to_rgb, new_reformatter, resolve_colour, rgb_to_frame

# A model-sized block (UHDVD's activations are ~50 MB at 320x180) allocated, filled and freed
# by torch on a worker thread, as the pipeline's process thread does for every frame: the
# page faults of five such frames once ten have run (glibc's per-thread cache of small freed
# chunks can keep a few blocks from merging at first; after that the heap is reused as is).
FAULTS_OF_FIVE_BLOCKS = textwrap.dedent(
    """
    import resource, sys, threading
    import torch
    from streamdeblur.core.allocator import tune_allocator
    if sys.argv[1] == "tuned":
        assert tune_allocator()
    faults = []
    def frame():
        torch.empty(16 << 20).fill_(1.0)  # 64 MiB, freed at once
    def work():
        for _ in range(10):
            frame()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            frame()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    print(faults[0])
    """
)


def faults_of_five_blocks(mode: str) -> int:
    command = [sys.executable, "-c", FAULTS_OF_FIVE_BLOCKS, mode]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_tuned_allocator_reuses_large_blocks_on_worker_threads() -> None:
    pages = 5 * (64 << 20) // 4096
    assert faults_of_five_blocks("default") > pages // 2  # glibc's default: mapped and faulted in anew
    assert faults_of_five_blocks("tuned") < pages // 20  # tuned: the same memory again


@pytest.mark.parametrize("bit_depth, pix_fmt", [(8, "yuv420p"), (10, "yuv420p10le")])
def test_a_streams_own_reformatter_converts_exactly_as_a_fresh_one(bit_depth: int, pix_fmt: str) -> None:
    colour = resolve_colour(None, None, None, None, 72, pix_fmt)
    rng = np.random.default_rng(0)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    images = [rng.integers(0, np.iinfo(dtype).max, (72, 128, 3), dtype=dtype) for _ in range(3)]
    to_yuv, to_rgb = new_reformatter(), new_reformatter()
    for image in images:
        fresh = rgb_to_frame(image, pix_fmt, colour)
        reused = rgb_to_frame(image, pix_fmt, colour, to_yuv)
        assert [bytes(p) for p in reused.planes] == [bytes(p) for p in fresh.planes]
        assert reused.colorspace == fresh.colorspace and reused.color_range == fresh.color_range
        back = frame_to_rgb(reused, colour, bit_depth, to_rgb)
        assert back.dtype == dtype and np.array_equal(back, frame_to_rgb(fresh, colour, bit_depth))
