"""`streamdeblur batch`: a real folder tree in, a mirrored tree out; broken inputs, reruns,
killed runs, the shared model server, and the Ray path on a local cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO
from media import clip_frames, decode_rgb, probe, texture, write_video
from test_cli import assert_one_line_error, run_cli
from test_pipeline import _Echo
from test_report import check_schema

from streamdeblur.batch.server import InferenceServer, SharedRunner
from streamdeblur.engine.build import Engine
from streamdeblur.engine.runner import ModelRunner
from streamdeblur.models import create_model, get_spec
from streamdeblur.models.registry import ModelSpec

W, H = 64, 48


def make_tree(root: Path, frames: int = 6) -> Path:
    """Images and videos in subfolders, a video cut in half (index lost), a Matroska file cut
    after some frames (damaged: written as far as it decodes), a broken image alone in its
    folder (fails once processing began), a text file, and an image without extension."""
    tree = root / "in"
    (tree / "clips" / "more").mkdir(parents=True)
    (tree / "photos").mkdir()
    write_video(tree / "clips" / "a.mp4", clip_frames(frames, W, H), audio_seconds=0.3)
    write_video(tree / "clips" / "more" / "b.avi", clip_frames(frames - 1, W, H), codec="mpeg4")
    whole = write_video(root / "whole.mp4", clip_frames(20, W, H))
    (tree / "clips" / "broken.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    long_mkv = write_video(root / "long.mkv", clip_frames(30, W, H))
    (tree / "clips" / "cut.mkv").write_bytes(long_mkv.read_bytes()[: long_mkv.stat().st_size * 2 // 3])
    (tree / "scans").mkdir()
    (tree / "scans" / "fake.png").write_bytes(b"\x89PNG nope")
    for n in range(3):
        cv2.imwrite(str(tree / "photos" / f"p{n}.png"), texture(W, H, shift=n))
    cv2.imwrite(str(tree / "top.jpg"), texture(40, 30))
    (tree / "photos" / "scan").write_bytes((tree / "photos" / "p0.png").read_bytes())
    (tree / "notes.txt").write_text("shopping list\n" * 40)
    return tree


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def batch_args(tree: Path, out: Path, weights: Path, *extra: object) -> list[object]:
    return ["batch", tree, "-o", out, "--model", "rt-focuser", "--weights", weights, *extra]


def test_batch_mirrors_tree_reports_broken_inputs_and_reruns(tmp_path: Path, rt_weights: Path) -> None:
    tree, out, report = make_tree(tmp_path), tmp_path / "out", tmp_path / "r.json"
    code, err = run_cli(*batch_args(tree, out, rt_weights, "--jobs", "3", "--report", report, "-q"))
    assert code == 3, err
    expected = {"clips/a.mp4", "clips/more/b.mkv", "clips/cut.mkv", "photos/p0.png", "photos/p1.png", "photos/p2.png"}
    assert files_under(out) == expected | {"top.jpg", "photos/scan.png"}
    assert not (out / "scans").exists()  # made for the broken image, removed when nothing came
    assert probe(out / "clips" / "a.mp4")["frames"] == 6 and probe(out / "clips" / "a.mp4")["audio_seconds"]
    assert probe(out / "clips" / "more" / "b.mkv")["frames"] == 5
    assert cv2.imread(str(out / "top.jpg")).shape == (30, 40, 3)
    assert cv2.imread(str(out / "photos" / "scan.png")).shape == (H, W, 3)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2 and "Traceback" not in err, err  # -q: one line per failed input
    assert any(line.startswith("clips/broken.mp4: MP4/MOV without its index") for line in lines), err
    assert any(line.startswith("scans/fake.png: not a readable image") for line in lines), err

    data = json.loads(report.read_text())
    check_schema(data, "batch")
    entries = {e["input"]: e for e in data["inputs"]}
    assert len(entries) == 11
    assert {k for k, e in entries.items() if e["status"] == "done"} == {
        "clips/a.mp4",
        "clips/more/b.avi",
        "clips/cut.mkv",
        "photos/p0.png",
        "photos/p1.png",
        "photos/p2.png",
        "photos/scan",
        "top.jpg",
    }
    assert entries["notes.txt"]["status"] == "skipped" and "not a video or image" in entries["notes.txt"]["reason"]
    assert (
        entries["clips/broken.mp4"]["status"] == "failed"
        and "without its index" in entries["clips/broken.mp4"]["error"]
    )
    cut = entries["clips/cut.mkv"]
    assert cut["warnings"] and cut["warnings"][0].startswith("input is damaged"), cut
    assert (
        0 < cut["input_damaged"]["frames_decoded"] == cut["frames"] == probe(out / "clips" / "cut.mkv")["frames"] < 30
    )
    assert entries["clips/more/b.avi"]["output"] == "clips/more/b.mkv" and entries["clips/more/b.avi"]["frames"] == 5
    assert all(e["seconds"] > 0 for e in entries.values() if e["status"] == "done")
    assert data["counts"] == {"done": 8, "skipped": 1, "failed": 2, "interrupted": 0, "pending": 0}
    assert data["frames_out"] == data["frames_in"] == 6 + 5 + 5 + cut["frames"] == len(data["frames"])
    assert (data["model"], data["device"]) == ("rt-focuser", "cpu")
    assert data["stages"]["model"]["mean_ms"] > 0
    assert {f["input"] for f in data["frames"]} == {k for k, e in entries.items() if e["status"] == "done"}
    assert not any(".partial" in name for name in files_under(out))

    stamps = {name: (out / name).stat() for name in files_under(out)}
    code, err = run_cli(*batch_args(tree, out, rt_weights, "--report", report, "-q"))
    assert code == 3, err
    data = json.loads(report.read_text())
    assert data["counts"]["done"] == 0 and data["frames_out"] == 0
    assert sum(e["reason"] == "output exists" for e in data["inputs"]) == 8
    for name, before in stamps.items():
        after = (out / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), name

    code, err = run_cli(*batch_args(tree, out, rt_weights, "--report", report, "-q", "--overwrite"))
    assert code == 3 and json.loads(report.read_text())["counts"]["done"] == 8


def test_names_formats_and_in_place_outputs(tmp_path: Path, rt_weights: Path) -> None:
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    write_video(tree / "sub" / "v.mp4", clip_frames(3, 32, 24))
    cv2.imwrite(str(tree / "i.png"), texture(32, 24))
    out = tmp_path / "out"
    code, err = run_cli(*batch_args(tree, out, rt_weights, "--suffix", "_sharp", "--format", "jpg", "--format", "mkv"))
    assert code == 0, err
    assert files_under(out) == {"sub/v_sharp.mkv", "i_sharp.jpg"}

    # Outputs beside their inputs: a rerun must not take the outputs for new inputs.
    for _ in range(2):
        code, err = run_cli(*batch_args(tree, tree, rt_weights, "--suffix", ".deblurred", "-q"))
        assert code == 0, err
    assert files_under(tree) == {"sub/v.mp4", "i.png", "sub/v.deblurred.mp4", "i.deblurred.png"}

    # OUT_DIR inside IN_DIR is left out of the walk, however the two are spelt.
    out = Path(os.path.relpath(tree / "o"))
    code, err = run_cli(*batch_args(tree.resolve(), out, rt_weights, "-q", "--report", tmp_path / "r.json"))
    assert code == 0, err
    assert files_under(tree / "o") == {"sub/v.mp4", "i.png", "sub/v.deblurred.mp4", "i.deblurred.png"}
    assert len(json.loads((tmp_path / "r.json").read_text())["inputs"]) == 4


def test_batch_usage_errors(tmp_path: Path, rt_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "file").write_text("x")
    assert_one_line_error(*run_cli(*batch_args(tmp_path / "nope", tmp_path / "o", rt_weights)), 1, "no such directory")
    assert_one_line_error(*run_cli(*batch_args(tmp_path / "in", tmp_path / "file", rt_weights)), 1, "not a directory")
    assert_one_line_error(*run_cli(*batch_args(tmp_path / "in", tmp_path / "in", rt_weights)), 2, "--suffix")
    assert_one_line_error(
        *run_cli(*batch_args(tmp_path / "in", tmp_path / "o", rt_weights, "--format", "xyz")), 2, "--format xyz"
    )
    assert_one_line_error(
        *run_cli(*batch_args(tmp_path / "in", tmp_path / "o", rt_weights, "--codec", "nope")), 2, "unknown encoder"
    )
    cv2.imwrite(str(tmp_path / "in" / "i.png"), texture(16, 16))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert_one_line_error(
        *run_cli(*batch_args(tmp_path / "in", tmp_path / "o", rt_weights, "--ray", "local")), 2, "streamdeblur[ray]"
    )


def test_manifest_spares_reruns_the_probing(tmp_path: Path, rt_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamdeblur.batch.run as batch_run

    tree, out, manifest = tmp_path / "in", tmp_path / "out", tmp_path / "m.jsonl"
    tree.mkdir()
    write_video(tree / "v.mp4", clip_frames(3, 32, 24))
    cv2.imwrite(str(tree / "i.png"), texture(32, 24))
    (tree / "readme.txt").write_text("not media\n" * 30)
    code, err = run_cli(*batch_args(tree, out, rt_weights, "--manifest", manifest, "-q"))
    assert code == 0, err
    last = {}
    for line in manifest.read_text().splitlines():
        record = json.loads(line)
        last[record["input"]] = record
    assert {k: r["status"] for k, r in last.items()} == {"v.mp4": "done", "i.png": "done", "readme.txt": "skipped"}
    assert last["v.mp4"]["frames"] == 3 and last["v.mp4"]["kind"] == "video"

    probed: list[str] = []
    real_probe = batch_run.probe
    monkeypatch.setattr(batch_run, "probe", lambda item: (probed.append(item.rel.as_posix()), real_probe(item)))
    cv2.imwrite(str(tree / "new.png"), texture(32, 24, shift=5))
    with manifest.open("a") as f:
        f.write('{"input": "v.mp4", "by')  # the cut last line of a killed run
    code, err = run_cli(*batch_args(tree, out, rt_weights, "--manifest", manifest, "-q"))
    assert code == 0, err
    assert probed == ["new.png"]  # unchanged files, media or not, are known from the manifest
    assert (out / "new.png").exists()
    assert all(json.loads(line) for line in manifest.read_text().splitlines())  # rewritten compacted


def _running_batch(tree: Path, out: Path, weights: Path, report: Path) -> subprocess.Popen:
    """One file at a time; mpeg4 writes from the first frame on (x264 would buffer them all)."""
    args = batch_args(tree, out, weights, "--jobs", "1", "--codec", "mpeg4", "--report", report)
    return subprocess.Popen(
        [sys.executable, "-m", "streamdeblur", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_batch_reruns_only_unfinished_work(tmp_path: Path, rt_weights: Path, sig: signal.Signals) -> None:
    """Killed while the second of three videos is being written: the first stays as it is,
    the second is redone from scratch, nothing half-written ever sits at a final name."""
    tree, out = tmp_path / "in", tmp_path / "out"
    tree.mkdir()
    for name in ("a", "b", "c"):
        write_video(tree / f"{name}.mp4", clip_frames(24, 48, 32))
    cv2.imwrite(str(tree / "d.png"), texture(48, 32))
    proc = _running_batch(tree, out, rt_weights, tmp_path / "killed.json")
    deadline = time.time() + 120
    partial = out / "b.partial.mp4"
    while not ((out / "a.mp4").exists() and partial.exists() and partial.stat().st_size > 0):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.05)
    first = (out / "a.mp4").stat()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert not (out / "b.mp4").exists() and not (out / "c.mp4").exists(), err.decode()
    if sig == signal.SIGTERM:  # a clean stop: exit 130, the file in flight discarded, a report
        assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()
        assert not partial.exists()
        counts = json.loads((tmp_path / "killed.json").read_text())["counts"]
        assert counts == {"done": 1, "skipped": 0, "failed": 0, "interrupted": 1, "pending": 2}
    else:
        assert proc.returncode == -signal.SIGKILL

    code, err = run_cli(*batch_args(tree, out, rt_weights, "--codec", "mpeg4", "--report", tmp_path / "r.json", "-q"))
    assert code == 0, err
    status = {e["input"]: (e["status"], e["reason"]) for e in json.loads((tmp_path / "r.json").read_text())["inputs"]}
    assert status == {
        "a.mp4": ("skipped", "output exists"),
        "b.mp4": ("done", None),
        "c.mp4": ("done", None),
        "d.png": ("done", None),
    }
    after = (out / "a.mp4").stat()
    assert (after.st_ino, after.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert files_under(out) == {"a.mp4", "b.mp4", "c.mp4", "d.png"}
    assert all(probe(out / f"{name}.mp4")["frames"] == 24 for name in "abc")


class _Held(torch.nn.Module):
    """Wraps a model so that its passes wait for `release`: frames queue up meanwhile."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.entered, self.release = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        self.entered.set()
        self.release.wait(30)
        return self.inner(x, prev)


def _serve_held(model: _Held, spec: ModelSpec, jobs: list, queued: int, in_flight: int) -> InferenceServer:
    """Run `jobs` (callables taking the server) on threads: the first one's frame holds the
    model until the others have queued `queued` frames, then the model is released."""
    server = InferenceServer(Engine(ModelRunner(model, spec, torch.device("cpu")), "none", None, ""), in_flight)
    model.release.clear()
    model.entered.clear()
    threads = [threading.Thread(target=job, args=(server,)) for job in jobs]
    threads[0].start()
    assert model.entered.wait(30)
    for t in threads[1:]:
        t.start()
    deadline = time.time() + 30
    while len(server._queue) < queued and time.time() < deadline:
        time.sleep(0.01)
    model.release.set()
    for t in threads:
        t.join(60)
    server.close()
    return server


def test_server_batches_same_size_frames_from_many_files() -> None:
    torch.manual_seed(0)
    spec = get_spec("rt-focuser")
    model = _Held(create_model("rt-focuser").for_inference())
    model.release.set()
    reference = ModelRunner(model, spec, torch.device("cpu"))
    images = [texture(W, H, shift=n) for n in range(5)] + [texture(40, 30)]
    expected = [reference(image) for image in images]
    results: dict[int, np.ndarray] = {}
    jobs = [lambda server, n=n: results.__setitem__(n, SharedRunner(server)(images[n])) for n in range(6)]
    server = _serve_held(model, spec, jobs, queued=5, in_flight=4)
    for n, image in enumerate(expected):
        assert results[n].shape == image.shape
        assert np.abs(results[n].astype(int) - image.astype(int)).max() <= 1
    # the held frame alone, the four queued 64x48 frames together, the 40x30 one alone
    assert (server.passes, server.frames) == (3, 6)


def test_server_keeps_each_files_recurrent_state() -> None:
    """Two files of a recurrent model on one instance, their first frames batched together:
    each gets exactly what a runner of its own gives (previous frames and skips included)."""
    spec = ModelSpec("echo", _Echo, "", 1, True, 0)
    model = _Held(_Echo())
    model.release.set()
    grey = [np.full((4, 4, 3), v, np.uint8) for v in (0, 60, 120, 180, 240)]
    clips = [(grey[4], grey[0], "skip", grey[4]), (grey[1], grey[3], grey[2], "skip")]

    def play(runner, clip) -> list[np.ndarray]:
        out, last = [], None
        for frame in clip:
            if isinstance(frame, str):
                runner.observe(last)
            else:
                out.append(runner(frame))
                last = frame
        return out

    alone = []
    for clip in clips:
        alone.append(play(ModelRunner(model, spec, torch.device("cpu")), clip))
    shared: dict[int, list[np.ndarray]] = {}
    blocker = np.zeros((2, 2, 3), np.uint8)
    jobs = [lambda server: SharedRunner(server)(blocker)]
    jobs += [lambda server, f=f: shared.__setitem__(f, play(SharedRunner(server), clips[f])) for f in (0, 1)]
    server = _serve_held(model, spec, jobs, queued=2, in_flight=2)
    for f in (0, 1):
        assert [a.tolist() for a in alone[f]] == [b.tolist() for b in shared[f]]
    assert (server.passes, server.frames) == (6, 7)  # the two first frames shared a pass


def test_ray_local_cluster_gives_the_local_outputs(
    tmp_path: Path, rt_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")
    import streamdeblur.batch.run as batch_run

    tree = tmp_path / "in"
    (tree / "v").mkdir(parents=True)
    write_video(tree / "v" / "clip.mp4", clip_frames(4, W, H))
    for n in range(2):
        cv2.imwrite(str(tree / f"p{n}.png"), texture(W, H, shift=n))
    whole = write_video(tmp_path / "long.mkv", clip_frames(30, W, H))
    (tree / "cut.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])  # done, with a warning
    (tree / "bad.png").write_bytes(b"\x89PNG nope")  # fails in the task
    # --crf 0: lossless H.264, so the videos hold the model's outputs as closely as the PNGs do
    code, err = run_cli(*batch_args(tree, tmp_path / "local", rt_weights, "-q", "--crf", "0"))
    assert code == 3, err
    monkeypatch.setattr(batch_run, "run_items", None)  # with --ray, nothing runs in this process
    report = tmp_path / "r.json"
    code, err = run_cli(
        *batch_args(tree, tmp_path / "ray", rt_weights, "-q", "--crf", "0", "--ray", "local", "--report", report)
    )
    assert code == 3, err
    expected = {"v/clip.mp4", "p0.png", "p1.png", "cut.mkv"}
    assert files_under(tmp_path / "ray") == files_under(tmp_path / "local") == expected
    local, remote = (decode_rgb(tmp_path / d / "v" / "clip.mp4") for d in ("local", "ray"))
    assert len(local) == len(remote) == 4
    # The model's outputs may differ by one level between a Ray worker and this process
    # (different thread counts sum in a different order); through YUV 4:2:0 and back, a change
    # of one level in every R, G and B value moves the decoded values by up to 5 (largest seen
    # over 300 random images), while a different frame or a lossy encode moves them far more.
    for a, b in zip(local, remote, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 6
    for name in ("p0.png", "p1.png"):
        a, b = (cv2.imread(str(tmp_path / d / name)).astype(int) for d in ("local", "ray"))
        assert np.abs(a - b).max() <= 1
    data = json.loads(report.read_text())
    entries = {e["input"]: e for e in data["inputs"]}
    assert data["counts"]["done"] == 4 and data["counts"]["failed"] == 1
    assert data["frames_out"] == 6 + entries["cut.mkv"]["frames"] and data["model"] == "rt-focuser"
    assert entries["cut.mkv"]["input_damaged"]["frames_decoded"] == entries["cut.mkv"]["frames"]
    assert "not a readable image" in entries["bad.png"]["error"]
