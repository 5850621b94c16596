"""How long `streamdeblur --help` takes to start: the median of several runs, in seconds.

    python benchmarks/startup.py [--runs 10]

The commands are imported only when used (streamdeblur/cli/__init__.py), so the top-level
help loads neither torch nor PyAV; docs/benchmarks.md records the figure.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    command = [sys.executable, "-m", "streamdeblur", "--help"]
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    print(f"streamdeblur --help: median {statistics.median(times):.3f} s, min {min(times):.3f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
