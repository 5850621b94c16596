"""The command line end to end: real files in, real files out, one-line errors, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import pytest
from conftest import REPO, shared_path
from media import clip_frames, probe, texture, write_video
from test_report import check_schema

from streamdeblur.cli import main
from streamdeblur.core.files import partial_path
from streamdeblur.engine.device import CPU_NATIVE, cpu_has
from streamdeblur.engine.weights import save_weights
from streamdeblur.models import create_model, get_spec

REPORT_KEYS = {
    "frames_in",
    "frames_out",
    "frames_skipped",
    "frames_dropped",
    "fps",
    "input_damaged",
    "model",
    "weights",
    "device",
    "precision",
    "fallback",
    "views",
    "stages",
    "frames",
}


def _write(path: Path, data: bytes | str) -> Path:
    """Create a file with `data` and return its path (for parametrized bad inputs)."""
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def run_cli(*args: object) -> tuple[int, str]:
    """Run `streamdeblur ARGS` in-process; returns (exit code, stderr)."""
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code, err.getvalue()


def assert_one_line_error(code: int, stderr: str, expected_code: int, fragment: str) -> None:
    assert code == expected_code, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert fragment in lines[0], stderr


def test_end_to_end_file_keeps_frames_rate_timestamps_and_audio(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(12, 64, 48), rate=Fraction(30000, 1001), audio_seconds=0.6)
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    code, err = run_cli(src, "-o", out, "--model", "rt-focuser", "--weights", rt_weights, "--report", report)
    assert code == 0, err
    a, b = probe(src), probe(out)
    assert b["frames"] == a["frames"] == 12
    assert b["rate"] == Fraction(30000, 1001)
    assert b["times"] == a["times"]
    assert b["audio_seconds"] == pytest.approx(a["audio_seconds"], abs=1e-6)
    data = json.loads(report.read_text())
    assert set(data) == REPORT_KEYS
    check_schema(data, "file")
    assert data["frames_in"] == data["frames_out"] == 12 and data["frames_skipped"] == 0
    assert (data["model"], data["device"], data["precision"]) == ("rt-focuser", "cpu", "fp32")
    assert set(data["stages"]) == {"decode", "gate", "denoise", "model", "encode"}
    assert data["stages"]["model"]["mean_ms"] > 0
    assert [f["index"] for f in data["frames"]] == list(range(12))
    assert all(set(f) == {"index", "pts", "blur_score", "processed"} and f["processed"] for f in data["frames"])
    assert [f["pts"] for f in data["frames"]] == pytest.approx(a["times"])


@pytest.mark.parametrize("name", ["nlm", "tv"])
def test_denoise_runs_as_its_own_stage(tmp_path: Path, rt_weights: Path, name: str) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(3, 64, 48))
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    args = ("--model", "rt-focuser", "--weights", rt_weights, "--report", report)
    code, err = run_cli(src, "-o", out, "--denoise", name, "--denoise-strength", "1.5", *args)
    assert code == 0, err
    stages = json.loads(report.read_text())["stages"]
    assert stages["denoise"]["mean_ms"] > 0 and probe(out)["frames"] == 3


def test_threads_option_and_emulated_precisions_on_a_cpu(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 32))
    args = ("--model", "rt-focuser", "--weights", rt_weights, "--device", "cpu")
    code, err = run_cli(src, "-o", tmp_path / "out.mp4", "--threads", "1", *args)
    assert code == 0, err
    if not cpu_has(CPU_NATIVE["fp16"]):  # about 100x slower emulated: refused, with the reason
        code, err = run_cli(src, "-o", tmp_path / "half.mp4", "--precision", "fp16", *args)
        assert_one_line_error(code, err, 2, "100x slower")


def test_python_dash_m_works() -> None:
    result = subprocess.run([sys.executable, "-m", "streamdeblur", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "INPUT -o OUTPUT" in result.stdout


def test_selective_skips_sharp_frames_of_clip_with_blurred_second_half(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "half.mp4", clip_frames(20, 96, 64, blur_from=10, blur=9))
    report = tmp_path / "r.json"
    code, err = run_cli(
        src,
        "-o",
        tmp_path / "out.mp4",
        "--model",
        "rt-focuser",
        "--weights",
        rt_weights,
        "--selective",
        "--report",
        report,
        "-q",
    )
    assert code == 0, err
    frames = json.loads(report.read_text())["frames"]
    assert [f["processed"] for f in frames] == [False] * 10 + [True] * 10
    assert json.loads(report.read_text())["frames_skipped"] == 10
    assert probe(tmp_path / "out.mp4")["frames"] == 20


def test_real_clip_with_audio_and_timecode_data_stream(tmp_path: Path, rt_weights: Path) -> None:
    """01_dog.mp4: 29.97 fps, AAC and a timecode data track. Threshold 0 skips the model, so
    this checks the I/O on a real 720p file quickly."""
    src = shared_path("data", "media", "01_dog.mp4")
    out = tmp_path / "dog.mp4"
    code, err = run_cli(
        src, "-o", out, "--model", "rt-focuser", "--weights", rt_weights, "--selective", "--blur-threshold", "0", "-q"
    )
    assert code == 0, err
    a, b = probe(src), probe(out)
    assert b["frames"] == a["frames"] == 289
    assert b["rate"] == Fraction(30000, 1001) and b["times"] == a["times"]
    assert b["audio_seconds"] == pytest.approx(a["audio_seconds"], abs=1e-6)
    assert b["streams"] == ["video", "audio", "data"] and b["metadata"]["timecode"] == "00:00:00:00"


def test_image_and_sequence_inputs(tmp_path: Path, rt_weights: Path) -> None:
    cv2.imwrite(str(tmp_path / "in.png"), texture(40, 30))
    code, err = run_cli(
        tmp_path / "in.png", "-o", tmp_path / "out.jpg", "--model", "rt-focuser", "--weights", rt_weights, "-q"
    )
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == (30, 40, 3)
    (tmp_path / "seq").mkdir()
    for n in range(3):
        cv2.imwrite(str(tmp_path / "seq" / f"{n:03d}.png"), texture(40, 30, shift=n))
    code, err = run_cli(
        tmp_path / "seq" / "*.png",
        "-o",
        tmp_path / "seq" / "out_%03d.png",
        "--model",
        "rt-focuser",
        "--weights",
        rt_weights,
        "-q",
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "seq").glob("out_*")) == ["out_001.png", "out_002.png", "out_003.png"]


@pytest.mark.parametrize(
    "name,make,code,fragment",
    [
        ("missing", lambda d: d / "nope.mp4", 1, "no such file"),
        ("empty", lambda d: _write(d / "e.mp4", b""), 1, "empty"),
        ("text", lambda d: _write(d / "t.mp4", "not a video\n" * 50), 1, "not a video"),
    ],
)
def test_bad_inputs_fail_with_one_line(tmp_path: Path, rt_weights: Path, name, make, code, fragment) -> None:
    result = run_cli(make(tmp_path), "-o", tmp_path / "o.mp4", "--model", "rt-focuser", "--weights", rt_weights)
    assert_one_line_error(*result, code, fragment)
    assert not (tmp_path / "o.mp4").exists()


def _cut(src: Path) -> Path:
    bad = src.with_name(f"cut_{src.name}")
    bad.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    return bad


def test_damaged_input_is_written_as_far_as_it_decodes(tmp_path: Path, rt_weights: Path) -> None:
    """Cut files: Matroska and index-first MP4 decode up to the cut, and every frame that does is
    written, with one warning line and `input_damaged` in the report. An index-last MP4 cannot
    even be opened: nothing decodes."""
    for src in (
        write_video(tmp_path / "in.mkv", clip_frames(30, 64, 48)),
        write_video(tmp_path / "fast.mp4", clip_frames(30, 64, 48), faststart=True),
    ):
        out, report = tmp_path / f"out_{src.name}", tmp_path / f"{src.name}.json"
        code, err = run_cli(_cut(src), "-o", out, "--model", "rt-focuser", "--weights", rt_weights, "--report", report)
        assert code == 0 and "Traceback" not in err, err
        warnings = [line for line in err.splitlines() if line.startswith("warning")]
        assert len(warnings) == 1 and "input is damaged" in warnings[0], err
        data = json.loads(report.read_text())
        check_schema(data, "file")
        assert 0 < data["input_damaged"]["frames_decoded"] == data["frames_out"] == probe(out)["frames"] < 30
    bad, out = _cut(write_video(tmp_path / "slow.mp4", clip_frames(30, 64, 48))), tmp_path / "out_slow.mp4"
    result = run_cli(bad, "-o", out, "--model", "rt-focuser", "--weights", rt_weights, "-q")
    assert_one_line_error(*result, 1, f"{bad}: MP4/MOV without its index")
    assert not out.exists() and not partial_path(out).exists()


def test_usage_and_output_errors(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
    common = ["--weights", rt_weights]
    assert_one_line_error(*run_cli(src, "-o", tmp_path / "o.mp4", "--model", "nope"), 2, "nope")
    assert_one_line_error(
        *run_cli(src, "-o", tmp_path / "o.mp4", "--model", "rt-focuser", "--device", "cuda", *common), 2, "CUDA"
    )
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    assert_one_line_error(*run_cli(src, "-o", existing, "--model", "rt-focuser", *common), 1, "--overwrite")
    assert existing.read_bytes() == b"keep me"
    result = run_cli(src, "-o", tmp_path / "o.webm", "--codec", "libx264", "--model", "rt-focuser", *common)
    assert_one_line_error(*result, 2, "--codec libx264: .webm cannot hold it")
    assert_one_line_error(*run_cli(src, "-o", tmp_path / "o.xyz", *common), 2, "unsupported video format .xyz")
    code, err = run_cli(src, "-o", tmp_path / "no" / "dir" / "o.mp4", "--model", "rt-focuser", *common, "-q")
    assert code == 0 and probe(tmp_path / "no" / "dir" / "o.mp4")["frames"] == 2, err  # its folders are made
    assert_one_line_error(*run_cli(src, "-o", "/proc/o.mp4", "--model", "rt-focuser", *common), 1, "/proc/o.mp4")
    assert_one_line_error(*run_cli(src, "-o", tmp_path / "o.png", "--model", "rt-focuser", *common), 2, "video")
    for threshold in ("-1", "nan"):
        result = run_cli(src, "-o", tmp_path / "o.mp4", "--selective", "--blur-threshold", threshold, *common)
        assert_one_line_error(*result, 2, "--blur-threshold")


def test_unexpected_error_is_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library's multi-line message (C++ frames, hints) is cut to its first line."""
    import streamdeblur.cli.run as cli

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("it broke\nException raised from somewhere (most recent call first):\nframe #0: ...")

    monkeypatch.setattr(cli, "run_file", fail)
    result = run_cli(tmp_path / "in.mp4", "-o", tmp_path / "o.mp4")
    assert_one_line_error(*result, 1, "internal error: RuntimeError: it broke (rerun with --debug")


def test_wrong_weights_name_the_model_they_belong_to(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
    uhdvd = tmp_path / "uhdvd.safetensors"
    save_weights(create_model("uhdvd").state_dict(), uhdvd, get_spec("uhdvd"))
    result = run_cli(src, "-o", tmp_path / "o.mp4", "--model", "rt-focuser", "--weights", uhdvd)
    assert_one_line_error(*result, 1, "uhdvd")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    assert_one_line_error(
        *run_cli(src, "-o", tmp_path / "o.mp4", "--model", "rt-focuser", "--weights", junk), 1, "junk.pth"
    )


def test_missing_default_weights_say_how_to_pass_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamdeblur.engine.weights as weights

    monkeypatch.setattr(weights, "search_dirs", lambda: [tmp_path / "empty"])
    src = write_video(tmp_path / "in.mp4", clip_frames(2, 32, 24))
    assert_one_line_error(*run_cli(src, "-o", tmp_path / "o.mp4", "--model", "uhdvd"), 1, "--weights")


def test_ctrl_c_leaves_a_playable_file(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "long.mp4", clip_frames(400, 128, 96), audio_seconds=16)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdeblur",
            src,
            "-o",
            out,
            "--model",
            "rt-focuser",
            "--weights",
            rt_weights,
            "--report",
            tmp_path / "r.json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.time() + 120
    while not partial_path(out).exists():  # the output opens once the model is loaded
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.1)
    time.sleep(3)  # some frames into the run (the encoder may still hold them in its lookahead)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    info = probe(out)
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0 < info["frames"] < 400 and info["frames"] == report["frames_out"]
    assert report["frames_in"] == report["frames_out"] + report["frames_dropped"]  # every frame read is accounted for
    assert info["audio_seconds"] <= info["times"][-1] + 1 / 25 + 0.03  # the audio ends with the last frame written
    assert not partial_path(out).exists()


def test_models_lists_both_models() -> None:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf), pytest.raises(SystemExit) as exit_info:
        main(["models", "--json"])
    assert exit_info.value.code == 0
    rows = {r["name"]: r for r in json.loads(buf.getvalue())}
    assert rows["uhdvd"]["params"] == 7_257_700 and rows["rt-focuser"]["params"] == 5_864_531
    assert rows["uhdvd"]["recurrent"] and not rows["rt-focuser"]["recurrent"]
    assert all(r["macs_per_pixel"] > 0 for r in rows.values())


def test_bench_prints_json_last_line() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamdeblur",
            "bench",
            "--model",
            "rt-focuser",
            "--size",
            "64x48",
            "--device",
            "cpu",
            "--runs",
            "2",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"model", "device", "size", "precision", "latency_ms", "fps"} <= set(data)
    assert data["model"] == "rt-focuser" and data["size"] == "64x48" and data["latency_ms"] > 0
