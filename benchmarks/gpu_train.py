"""Train several light-model runs at once on a lent CUDA GPU, inside one device call.

A device call is short (minutes, once per session) and the light models leave most of a
big GPU idle, so this runs every `--run` (by default RUNS) side by side, each a plain `streamdeblur
train` process. A short calibration first runs them all together for CALIBRATION steps and
measures each one's pace under that contention; each run then gets the steps that fit
`--budget` seconds, so that its cosine schedule ends in time. Afterwards each run's last
checkpoints are packed into tar files small enough for the trip back (`--pack-mib`); the
checkpoints are then evaluated on the held-out split where the data is
(`streamdeblur eval --weights RUN/checkpoints/step_N`) and continued with `--resume`.

    python3 benchmarks/gpu_train.py --data sharp:gpudata/train_sharp --out "$OUT" --budget 420

`--data` holds the training split only (it is what travels to the device); the runs
therefore use `--no-eval`. Figures and commands of each use: docs/training.md.
"""

from __future__ import annotations

import argparse
import csv
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

CALIBRATION = 150  # steps; the pace is read from the steps after the first CALIBRATION // 3
RETURN_FILES, RETURN_MIB = 8, 64  # what a device call sends back from $OUT (device README)


@dataclass(frozen=True)
class Run:
    name: str
    model: str
    checkpoints: int  # kept and sent back (an msdeblur-m checkpoint is ~16 MB: one; 0: the final weights only)
    args: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Run:
        """NAME:MODEL:CHECKPOINTS:TRAIN-ARGS, e.g. `s1:msdeblur-s:4:--batch 32 --crop 256`."""
        name, model, checkpoints, args = text.split(":", 3)
        return cls(name, model, int(checkpoints), tuple(args.split()))


S, L = "weights/msdeblur-s.safetensors", "weights/msdeblur-l.safetensors"
# The next call's runs (docs/training.md, after run 31): S on at the recipe's mix (on the CPU,
# 14,000 such steps lifted `default` by 0.07 dB), S on with half its samples nearly sharp (the
# finish that kept `mild`), and L on. Training on photos needs no PyAV (tested), so a call
# carries `gpudata/` alone beside the repository (about 41 MiB of the 64 a call takes) and
# installs nothing. Three S checkpoints each (6.6 MB) and L's weights (13 MB) come back in 54 MB.
RUNS = (
    f"s-on:msdeblur-s:3:--init {S} --batch 64 --crop 256 --lr 2e-4",
    f"s-half:msdeblur-s:3:--init {S} --batch 64 --crop 256 --lr 1e-4 --blur default:0.5,mild:0.5",
    f"l-m5:msdeblur-l:0:--init {L} --batch 32 --crop 256 --lr 1e-4 --blur default:0.5,mild:0.5",
)


def command(run: Run, args: argparse.Namespace, out: Path, steps: int, every: int, limit: float) -> list[str]:
    cmd = [sys.executable, "-m", "streamdeblur", "train", "--model", run.model, *run.args]
    for spec in args.data:
        cmd += ["--data", spec]
    cmd += ["--steps", str(steps), "--checkpoint-every", str(every), "--keep", str(max(run.checkpoints, 1))]
    cmd += ["--log-every", "10", "--no-eval", "--time-limit", str(limit), "--device", args.device]
    return cmd + [*args.extra.split(), "-q", "--debug", "-o", str(out)]


def launch(cmds: list[list[str]], dirs: list[Path], logs: Path) -> list[subprocess.Popen]:
    """Start the commands; each one's output goes to `logs/<its run folder's name>.log`."""
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for cmd, out in zip(cmds, dirs, strict=True):
        print(f"[{out.name}] {' '.join(cmd[1:])}", flush=True)
        with (logs / f"{out.name}.log").open("w") as log:
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    return procs


def rows(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / "log.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def pace(run_dir: Path, skip: int) -> float:
    """Steps per second from the first logged step past `skip` (warm-up, autotuning) to the last."""
    logged = rows(run_dir)
    first = next((r for r in logged if r["step"] > skip), logged[0])
    return (logged[-1]["step"] - first["step"]) / (logged[-1]["elapsed_s"] - first["elapsed_s"])


def failures(procs: list[subprocess.Popen], dirs: list[Path], logs: Path) -> int:
    """How many commands failed; the end of each failed one's log is printed."""
    failed = [(out, p.returncode) for out, p in zip(dirs, procs, strict=True) if p.returncode]
    for out, code in failed:
        tail = (logs / f"{out.name}.log").read_text().splitlines()[-25:]
        print(f"[{out.name}] exit {code}:\n" + "\n".join(tail), flush=True)
    return len(failed)


def pack(run: Run, run_dir: Path, out: Path, mib: float) -> list[Path]:
    """The run's checkpoints, newest first, in tar files of at most `mib` MiB each (or its
    final fp16 weights and manifest, where it keeps none)."""
    if not run.checkpoints:
        if not any(run_dir.glob("*.safetensors")):  # stopped short of its steps: the last checkpoint's
            last = sorted((run_dir / "checkpoints").glob("step_*"))[-1]
            subprocess.run([sys.executable, "-m", "streamdeblur", "train", "--resume", str(last), "--finish", "-q"])
        path = out / f"{run.name}-weights.tar"
        with tarfile.open(path, "w") as tar:
            for f in [*run_dir.glob("*.safetensors"), run_dir / "manifest.json"]:
                if f.exists():
                    tar.add(f, arcname=f"{run.name}/{f.name}")
        return [path]
    name = run.name
    groups: list[list[Path]] = []
    room = 0.0
    for ckpt in sorted((run_dir / "checkpoints").glob("step_*"), reverse=True):
        size = sum(f.stat().st_size + 1024 for f in ckpt.iterdir()) + 1024
        if not groups or size > room:
            groups.append([])
            room = mib * 2**20
        groups[-1].append(ckpt)
        room -= size
    written = []
    for i, group in enumerate(groups):
        path = out / f"{name}-{i}.tar"
        with tarfile.open(path, "w") as tar:
            for ckpt in group:
                tar.add(ckpt, arcname=f"{name}/checkpoints/{ckpt.name}")
        written.append(path)
    return written


def within_return_limits(packed: list[list[Path]], logs: Path) -> list[Path]:
    """The tar files that come back from the device (RETURN_FILES files, RETURN_MIB in all,
    beside `logs` and the driver's log): each run's newest checkpoints first, a run at a
    time in turn, so that no run loses all of its checkpoints to another's; the rest are
    deleted, and named, rather than left for the device to drop at random."""
    kept, files, room = [], RETURN_FILES - 2, RETURN_MIB * 2**20 - logs.stat().st_size - 2**20
    for path in (p for turn in zip_longest(*packed) for p in turn if p is not None):
        size = path.stat().st_size
        if files and size <= room:
            kept.append(path)
            files, room = files - 1, room - size
        else:
            print(f"{path.name}: left out (return limits: {RETURN_FILES} files, {RETURN_MIB} MiB)", flush=True)
            path.unlink()
    return kept


def train_all(args: argparse.Namespace, dirs: list[Path], steps: list[int], limit: float) -> tuple[float, int]:
    """Run every run at once (`steps` each); (seconds taken, how many failed)."""
    logs = args.work / "logs"
    cmds = []
    for run, out, n in zip(args.runs, dirs, steps, strict=True):
        every = n // max(run.checkpoints, 1)
        cmds.append(command(run, args, out, n, every, limit))
    start = time.monotonic()
    procs = launch(cmds, dirs, logs)
    report = start + 60
    while any(p.poll() is None for p in procs):
        time.sleep(2)
        now = time.monotonic()
        if now > report:
            report += 60
            last = [(rows(d) or [{"step": 0, "loss": float("nan")}])[-1] for d in dirs]
            print(
                f"{now - start:4.0f} s: "
                + ", ".join(
                    f"{r.name} step {x['step']:.0f} loss {x['loss']:.4f}" for r, x in zip(args.runs, last, strict=True)
                ),
                flush=True,
            )
        if now - start > limit + 30:  # a straggler: Ctrl-C saves a checkpoint where it is
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait()
    return time.monotonic() - start, failures(procs, dirs, logs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--out", type=Path, required=True, help="where the tar files go")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_train"))
    parser.add_argument("--budget", type=float, default=420, help="seconds of training per run")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--extra", default="", help="appended to every train command (a dry run on a CPU)")
    parser.add_argument("--pack-mib", type=float, default=15.5)
    parser.add_argument("--calibration", type=int, default=CALIBRATION)
    parser.add_argument("--run", action="append", type=Run.parse, help=Run.parse.__doc__)
    args = parser.parse_args()
    args.runs = tuple(args.run or map(Run.parse, RUNS))

    cal = [args.work / f"cal-{r.name}" for r in args.runs]
    took, failed = train_all(args, cal, [args.calibration] * len(args.runs), 1e9)
    if failed:
        sys.exit(1)
    startup = took - max(rows(d)[-1]["elapsed_s"] for d in cal)
    paces = [pace(d, args.calibration // 3) for d in cal]
    print(
        f"calibration: {took:.0f} s, start-up {startup:.0f} s, steps/s side by side: "
        + ", ".join(f"{r.name} {p:.1f}" for r, p in zip(args.runs, paces, strict=True)),
        flush=True,
    )

    dirs = [args.work / r.name for r in args.runs]
    steps = [max(100, int(p * (args.budget - startup) * 0.95) // 100 * 100) for p in paces]
    took, failed = train_all(args, dirs, steps, args.budget + 30)
    print(f"training: {took:.0f} s, {failed} run(s) failed or were stopped", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.out / "logs.tar", "w") as tar:
        tar.add(args.work / "logs", arcname="logs")
        for run, d in zip(args.runs, dirs, strict=True):
            for f in ("log.csv", "run.json"):
                if (d / f).exists():
                    tar.add(d / f, arcname=f"{run.name}/{f}")
    packed = [pack(run, d, args.out, args.pack_mib) for run, d in zip(args.runs, dirs, strict=True)]
    for path in [args.out / "logs.tar", *within_return_limits(packed, args.out / "logs.tar")]:
        print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB")
    for run, d in zip(args.runs, dirs, strict=True):
        if not (logged := rows(d)):
            continue
        last = logged[-1]
        print(f"{run.name}: {last['step']:.0f} steps, loss {last['loss']:.4f}, {last['steps_per_s']:.1f} steps/s")


if __name__ == "__main__":
    main()
