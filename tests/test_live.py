"""`streamdeblur live` against real components: a GStreamer RTSP server on loopback (started,
stopped, frozen and restarted mid-run), a silent TCP server, a paced HTTP MPEG-TS server, real
FFmpeg files and UDP, and the preview window on a real X server (Xvfb).

The RTSP tests need gst-rtsp-server with the system interpreter's GObject bindings
(`.ci/run` installs them) and skip cleanly without them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REPO
from media import clip_frames, probe, write_video
from test_cli import REPORT_KEYS, assert_one_line_error, run_cli
from test_report import check_schema

from streamdeblur.core.errors import InputError
from streamdeblur.core.files import partial_path
from streamdeblur.core.frame import Frame
from streamdeblur.engine.build import build_engine
from streamdeblur.engine.weights import save_weights
from streamdeblur.io.colour import resolve_colour
from streamdeblur.io.sinks import EncodeOptions, VideoFileSink
from streamdeblur.io.sinks.stream import StreamSink
from streamdeblur.io.sources import SourceInfo
from streamdeblur.io.sources.live import BACKOFF_FIRST, AVCapture, LiveSource, StreamOptions, WebcamCapture, source_kind
from streamdeblur.live import LiveOptions, keep_up, run_live
from streamdeblur.models import create_model, get_spec
from streamdeblur.pipeline.config import RunConfig
from streamdeblur.pipeline.stages import FrameProcessor
from streamdeblur.pipeline.stats import RunStats

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
LIVE_KEYS = REPORT_KEYS | {"reconnects", "latency_ms"}
W, H = 96, 64


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def gst_rtsp() -> None:
    check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        ok = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip("gst-rtsp-server with python3-gi is not installed (see .ci/run)")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s at 25 fps: longer than any run below, so the server never runs out mid-test."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", clip_frames(250, W, H), rate=25)


class RtspServer:
    """tests/rtsp_server.py as a subprocess on a free loopback port: /clip plays, /pub records."""

    def __init__(self, clip: Path, folder: Path) -> None:
        self.clip, self.port, self.received = clip, free_port(), folder / "received.ts"
        self.start()

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def start(self) -> None:
        args = ["--port", self.port, "--clip", self.clip, "--record", self.received]
        self.proc = subprocess.Popen([SYSTEM_PYTHON, SERVER, *map(str, args)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGCONT)  # in case a test left it frozen
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def server(gst_rtsp: None, clip: Path, tmp_path: Path):
    srv = RtspServer(clip, tmp_path)
    yield srv
    srv.stop()


class LiveRun:
    """`streamdeblur live ARGS` as a subprocess (so it can be interrupted), stderr collected as it comes."""

    def __init__(self, *args: object) -> None:
        cmd = [sys.executable, "-m", "streamdeblur", "live", *map(str, args)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines: list[str] = []
        self.stdout = b""
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    def _read_stdout(self) -> None:
        self.stdout = self.proc.stdout.read()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until `text` appears on stderr (the header's `output` line: frames are about to flow)."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.stderr
            time.sleep(0.05)

    def finish(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return code


def live_args(rt_weights: Path, report: Path, *extra: object) -> list[object]:
    return ["--model", "rt-focuser", "--weights", rt_weights, "--report", report, *extra]


def check_report(report: Path) -> dict:
    data = json.loads(report.read_text())
    assert set(data) == LIVE_KEYS
    check_schema(data, "live")
    assert data["frames_in"] == data["frames_out"] + data["frames_dropped"]
    latency = data["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["max"]
    assert [f["index"] for f in data["frames"]] == sorted(f["index"] for f in data["frames"])
    return data


def recorded_times(path: Path) -> list[float]:
    info = probe(path)
    times = info["times"]
    assert info["frames"] > 0 and times == sorted(times) and len(set(times)) == len(times)
    return times


# --- RTSP: the real server --------------------------------------------------------------------


def test_rtsp_to_file_and_publish_to_rtsp(server: RtspServer, tmp_path: Path, rt_weights: Path) -> None:
    """Read the server's /clip, record it and publish it back to the server's /pub (RECORD)."""
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    run = LiveRun(server.url("clip"), "-o", out, "-o", server.url("pub"), "--duration", 3, "--timeout", 3,
                  *live_args(rt_weights, report))  # fmt: skip
    assert run.finish() == 0, run.stderr
    data = check_report(report)
    assert data["reconnects"] == 0 and data["frames_out"] >= 15
    times = recorded_times(out)
    assert times == pytest.approx([f["pts"] for f in data["frames"]], abs=0.001)  # capture times
    assert 1.5 < times[-1] - times[0] <= 3.2  # real time: at most the 3 s the run lasted
    with av.open(str(server.received)) as received:  # what the server got by RTSP RECORD
        frames = [f.to_ndarray(format="rgb24") for f in received.decode(video=0)]
    assert len(frames) >= data["frames_out"] - 2 and frames[0].shape == (H, W, 3)


def test_server_restart_mid_run_reconnects(server: RtspServer, tmp_path: Path, rt_weights: Path) -> None:
    out, report = tmp_path / "out.mkv", tmp_path / "r.json"
    run = LiveRun(server.url("clip"), "-o", out, "--duration", 8, "--timeout", 2, *live_args(rt_weights, report))
    run.wait_for("output")
    time.sleep(1.5)
    server.stop()
    server.start()  # down for as long as the server takes to start: about a second
    assert run.finish() == 0, run.stderr
    data = check_report(report)
    assert data["reconnects"] >= 1 and "reconnected" in run.stderr
    times = recorded_times(out)
    assert max(np.diff(times)) > BACKOFF_FIRST  # the outage is in the recording's timeline, as it happened
    assert times[-1] > times[int(np.argmax(np.diff(times)))] + 0.5  # and frames came after it


def test_frozen_server_is_detected_as_a_stall(server: RtspServer, tmp_path: Path, rt_weights: Path) -> None:
    """SIGSTOP keeps the TCP connection open and silent: only the watchdog can notice."""
    report = tmp_path / "r.json"
    run = LiveRun(server.url("clip"), "-o", tmp_path / "o.mkv", "--duration", 8, "--timeout", 1,
                  *live_args(rt_weights, report))  # fmt: skip
    run.wait_for("output")
    time.sleep(1.0)
    server.proc.send_signal(signal.SIGSTOP)
    time.sleep(2.5)
    server.proc.send_signal(signal.SIGCONT)
    assert run.finish() == 0, run.stderr
    assert "stalled: no frame for 1 s" in run.stderr
    assert check_report(report)["reconnects"] >= 1


def test_lost_source_gives_up_after_attempts_and_keeps_the_recording(
    server: RtspServer, tmp_path: Path, rt_weights: Path
) -> None:
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    run = LiveRun(server.url("clip"), "-o", out, "--reconnect-attempts", 2, "--timeout", 1,
                  *live_args(rt_weights, report))  # fmt: skip
    run.wait_for("output")
    time.sleep(1.0)
    server.stop()
    assert run.finish() == 1, run.stderr
    assert "2 reconnect attempts failed" in run.stderr.splitlines()[-1] and "Traceback" not in run.stderr
    assert len(recorded_times(out)) == check_report(report)["frames_out"] and not partial_path(out).exists()


# --- watchdog without GStreamer ------------------------------------------------------------------


def test_silent_server_is_a_stall_not_a_hang(tmp_path: Path, rt_weights: Path) -> None:
    """A server that accepts and never answers: FFmpeg would wait for ever."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/cam"
        start = time.monotonic()
        result = run_cli("live", url, "-o", tmp_path / "o.mp4", "--timeout", 1, "--model", "rt-focuser",
                         "--weights", rt_weights)  # fmt: skip
    assert_one_line_error(*result, 1, "stalled: no frame for 2 s")  # connecting: twice --timeout
    assert time.monotonic() - start < 10 and not list(tmp_path.iterdir())


def test_refused_connection_fails_at_once(tmp_path: Path) -> None:
    result = run_cli("live", f"rtsp://127.0.0.1:{free_port()}/cam", "--timeout", 5)
    assert_one_line_error(*result, 1, "Connection refused")


# --- files played as cameras -----------------------------------------------------------------------


def test_source_faster_than_model_drops_frames_with_bounded_latency(tmp_path: Path, rt_weights: Path) -> None:
    """300 frames at 150 fps (2 s), paced like a camera; the model needs far more than 7 ms a frame.
    Without dropping, the last frame would come out seconds late; raw frames go to stdout."""
    src = write_video(tmp_path / "fast.mp4", clip_frames(300, W, H), rate=150)
    report = tmp_path / "r.json"
    run = LiveRun(src, "-o", "-", *live_args(rt_weights, report))
    assert run.finish() == 0, run.stderr
    data = check_report(report)
    assert data["frames_in"] == 300 and data["frames_dropped"] > 100
    model_ms = data["stages"]["model"]["mean_ms"]
    backlog_s = 300 * model_ms / 1000 - 2  # the last frame's latency if every frame were processed
    assert data["latency_ms"]["max"] < 1000 * min(1.0, backlog_s / 2), (data["latency_ms"], model_ms)
    assert f"rgb24 {W}x{H} frames on stdout" in run.stderr
    assert len(run.stdout) == data["frames_out"] * W * H * 3
    frames = np.frombuffer(run.stdout, np.uint8).reshape(-1, H, W, 3)
    assert frames.std() > 10  # pictures, not zeros


def test_ctrl_c_leaves_a_playable_recording_and_udp_gets_the_stream(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "cam.mp4", clip_frames(250, W, H), rate=25)
    out, report, port = tmp_path / "out.mp4", tmp_path / "r.json", free_port()
    captured = tmp_path / "udp.ts"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))  # listening before the run starts: no datagram is missed
    sock.settimeout(0.2)
    stop = threading.Event()

    def capture() -> None:  # the datagrams as they arrive; FFmpeg demuxes and decodes them below
        with captured.open("wb") as f:
            while not stop.is_set():
                try:
                    f.write(sock.recv(65536))
                except TimeoutError:
                    pass

    receiver = threading.Thread(target=capture, daemon=True)
    receiver.start()
    run = LiveRun(src, "-o", out, "-o", f"udp://127.0.0.1:{port}", *live_args(rt_weights, report))
    run.wait_for("output")
    time.sleep(2.0)
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.stderr
    assert "Traceback" not in run.stderr
    data = check_report(report)
    assert len(recorded_times(out)) == data["frames_out"] > 10 and not partial_path(out).exists()
    stop.set()
    receiver.join(5)
    sock.close()
    with av.open(str(captured), format="mpegts") as container:
        received = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(received) >= data["frames_out"] // 2 and received[-1].shape == (H, W, 3)


class PacedHttp(ThreadingHTTPServer):
    """An HTTP camera on loopback: every GET streams `clip` (MPEG-TS) at its real rate, as a
    camera's HTTP stream does; the first response is cut after `first_seconds`."""

    def __init__(self, clip: Path, seconds: float, first_seconds: float) -> None:
        self.data, self.seconds, self.first_seconds, self.gets = clip.read_bytes(), seconds, first_seconds, 0
        super().__init__(("127.0.0.1", 0), _PacedHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cam.ts"


class _PacedHandler(BaseHTTPRequestHandler):
    server: PacedHttp

    def do_GET(self) -> None:
        srv = self.server
        srv.gets += 1
        limit = srv.first_seconds if srv.gets == 1 else float("inf")
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        chunk, start = max(1, int(len(srv.data) * 0.05 / srv.seconds)), time.monotonic()  # 50 ms of the clip
        try:
            for offset in range(0, len(srv.data), chunk):
                if time.monotonic() - start > limit:
                    return
                self.wfile.write(srv.data[offset : offset + chunk])
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client has gone: the run ended

    def log_message(self, *args: object) -> None:
        pass


def test_http_stream_to_file_reconnects_when_the_response_ends(tmp_path: Path, rt_weights: Path) -> None:
    """A real HTTP server streams MPEG-TS at camera pace; its first response ends after 1.5 s,
    which for a live source is a lost connection: the run reconnects and records on."""
    src = write_video(tmp_path / "cam.ts", clip_frames(250, W, H), rate=25)
    httpd = PacedHttp(src, seconds=10, first_seconds=1.5)
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    run = LiveRun(httpd.url, "-o", out, "--duration", 5, "--timeout", 2, *live_args(rt_weights, report))
    try:
        assert run.finish() == 0, run.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
    data = check_report(report)
    assert data["reconnects"] >= 1 and httpd.gets >= 2 and "reconnected" in run.stderr
    times = recorded_times(out)
    assert len(times) == data["frames_out"] >= 20
    assert times[-1] > 2.5  # frames from after the reconnect are in the recording


@pytest.fixture
def x_display(monkeypatch: pytest.MonkeyPatch):
    """A real X server (Xvfb) on a display number it picks itself; DISPLAY points at it."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed (see .ci/run)")
    read, write = os.pipe()
    args = ["Xvfb", "-displayfd", str(write), "-screen", "0", "800x600x24", "-nolisten", "tcp"]
    server = subprocess.Popen(args, pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as announced:
        monkeypatch.setenv("DISPLAY", f":{announced.readline().strip()}")
    yield
    server.terminate()
    server.wait(10)


def xdotool(*args: object) -> str:
    """xdotool presses keys through XTEST, as a keyboard would."""
    return subprocess.run(["xdotool", *map(str, args)], capture_output=True, text=True, timeout=30, check=True).stdout


def window_width(window: str) -> int:
    fields = dict(line.split("=") for line in xdotool("getwindowgeometry", "--shell", window).split())
    return int(fields["WIDTH"])


def test_preview_window_toggles_side_by_side_and_quits_on_q(x_display: None, tmp_path: Path, rt_weights: Path) -> None:
    """The preview on a real X server: the window opens (cv2.imshow hangs for ever when PyAV
    loads before OpenCV), `s` puts input and output side by side, `q` ends the run cleanly."""
    w = 256
    src = write_video(tmp_path / "cam.mp4", clip_frames(500, w, 96), rate=25)  # 20 s
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    run = LiveRun(src, "--preview", "-o", out, *live_args(rt_weights, report))
    try:
        run.wait_for("output")
        window = xdotool("search", "--sync", "--name", "^streamdeblur").split()[0]
        assert window_width(window) < 2 * w
        xdotool("windowfocus", "--sync", window)
        xdotool("key", "s")
        deadline = time.monotonic() + 10
        while window_width(window) < 2 * w:
            assert time.monotonic() < deadline, "s did not put input and output side by side"
            time.sleep(0.1)
        xdotool("key", "q")
        assert run.finish(timeout=30) == 0, run.stderr
    finally:
        run.proc.kill()
    data = check_report(report)
    times = recorded_times(out)
    assert len(times) == data["frames_out"] and times[-1] < 15  # q ended it, not the end of the file


# --- pieces -------------------------------------------------------------------------------------


def test_source_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kinds = {
        "0": "webcam",
        "/dev/video2": "webcam",
        "/dev/v4l/by-id/usb-cam-video-index0": "webcam",
        "rtsp://cam.local:554/stream1": "network",
        "RTSP://cam/x": "network",
        "http://host/mjpeg": "network",
        "https://host/live.m3u8": "network",
        "udp://@:5000": "network",
        "clip.mp4": "file",
        "/dev/video": "file",
    }
    assert {uri: source_kind(uri) for uri in kinds} == kinds
    (tmp_path / "3").write_bytes(b"x")
    assert source_kind("3") == "file"  # an existing file wins over a camera index


def test_webcam_errors_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(*run_cli("live", "/dev/video99"), 1, "no such camera device")
    with pytest.raises(InputError, match="cannot open the camera"):
        WebcamCapture("/dev/null")  # OpenCV's real V4L2 backend refuses a device that is no camera


def test_preview_needs_a_display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    assert_one_line_error(*run_cli("live", "0", "--preview"), 1, "DISPLAY is not set")
    monkeypatch.setenv("DISPLAY", ":97")
    assert_one_line_error(*run_cli("live", "0", "--preview"), 1, "cannot connect to X display :97")


def test_output_errors(tmp_path: Path, rt_weights: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(5, W, H))
    common = ["--model", "rt-focuser", "--weights", rt_weights]
    assert_one_line_error(*run_cli("live", src, "-o", "ftp://host/x", *common), 2, "unsupported output URL")
    assert_one_line_error(*run_cli("live", src, "-o", "-", "-o", "-", *common), 2, "twice")
    (tmp_path / "exists.mp4").write_bytes(b"x")
    assert_one_line_error(*run_cli("live", src, "-o", tmp_path / "exists.mp4", *common), 1, "already exists")
    assert_one_line_error(*run_cli("live", src, "-o", src, "--overwrite", *common), 1, "would overwrite INPUT")
    port = free_port()
    assert_one_line_error(*run_cli("live", src, "-o", f"rtsp://127.0.0.1:{port}/x", *common), 1, "cannot publish")


def test_outputs_are_aborted_when_the_run_fails_to_start(
    tmp_path: Path, rt_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened outputs hold containers (and, publishing, connections): they are let go at once."""

    class FailingDisplay:
        def start(self, *args: object) -> None:
            raise KeyboardInterrupt  # Ctrl-C after the outputs were opened, before the run

    aborted: list[VideoFileSink] = []
    abort = VideoFileSink.abort
    monkeypatch.setattr(VideoFileSink, "abort", lambda sink: aborted.append(sink) or abort(sink))
    src = write_video(tmp_path / "in.mp4", clip_frames(5, W, H))
    out = tmp_path / "out.mp4"
    config = RunConfig(model="rt-focuser", weights=str(rt_weights))
    with pytest.raises(KeyboardInterrupt):
        run_live(str(src), config, LiveOptions(outputs=[str(out)]), FailingDisplay())
    assert [sink.path for sink in aborted] == [out]
    assert not out.exists() and not partial_path(out).exists()


def test_stream_output_is_closed_when_its_last_packets_cannot_be_sent() -> None:
    colour = resolve_colour(None, None, None, None, H, None)
    info = SourceInfo("cam", "video", W, H, Fraction(25), Fraction(1, 1000), None, 8, colour)
    sink = StreamSink(f"udp://127.0.0.1:{free_port()}", info, EncodeOptions())
    container, closed = sink.container, []

    class ReceiverGone:
        def mux(self, packets: object) -> None:
            raise OSError("connection reset")

        def close(self) -> None:
            container.close()
            closed.append(True)

    sink.container = ReceiverGone()
    sink.finish()
    assert closed == [True]


def test_colour_left_to_the_first_frame_is_the_one_it_carries(tmp_path: Path) -> None:
    src = write_video(tmp_path / "709.mp4", clip_frames(3, W, H), colour=(1, 2))  # BT.709 full range, SD size
    capture = AVCapture(str(src), StreamOptions(), paced=False)
    capture.colour = None  # as for a stream that describes itself only once decoding has begun
    try:
        next(capture.images())
    finally:
        capture.close()
    assert (capture.colour.matrix, capture.colour.range) == (1, 2)


def test_file_source_pts_are_capture_times_at_the_file_rate(tmp_path: Path) -> None:
    src = write_video(tmp_path / "in.mp4", clip_frames(10, W, H), rate=50)
    source = LiveSource(str(src))
    try:
        frames = list(source.frames())
    finally:
        source.close()
    assert len(frames) == 10 and frames[0].pts == 0 and not any(f.gap for f in frames)
    times = [f.time for f in frames]
    assert times == pytest.approx([f.captured - frames[0].captured for f in frames], abs=0.002)
    assert times[-1] == pytest.approx(9 / 50, abs=0.1)  # paced at the file's own rate


def test_gap_resets_recurrent_state(weights_dir: Path) -> None:
    """After a reconnect the previous output belongs to another moment: UHDVD must start afresh."""
    engine = build_engine(RunConfig(model="uhdvd", weights=str(weights_dir / "uhdvd.safetensors")), (32, 32))
    stats = RunStats()
    process = FrameProcessor(engine.runner, stats.stages, selective=False, threshold=None)
    a, b = clip_frames(2, 32, 32)
    fresh = engine.runner(b.copy())  # b as the first frame of a shot
    engine.runner.reset()
    process(Frame(0, a.copy(), 0, Fraction(1, 1000)))
    carried = process(Frame(1, b.copy(), 1, Fraction(1, 1000))).image
    process(Frame(2, a.copy(), 2, Fraction(1, 1000)))
    after_gap = process(Frame(3, b.copy(), 3, Fraction(1, 1000), gap=True)).image
    assert np.array_equal(after_gap, fresh) and not np.array_equal(carried, fresh)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    for name in ("uhdvd", "rt-focuser"):
        save_weights(create_model(name).state_dict(), folder / f"{name}.safetensors", get_spec(name))
    return folder


def test_auto_takes_the_light_model_when_the_preferred_cannot_keep_up(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMDEBLUR_WEIGHTS", str(weights_dir))
    preferred = build_engine(RunConfig(model="uhdvd"), (32, 32))  # what auto picks on a capable GPU

    def info(fps: Fraction) -> SourceInfo:
        colour = resolve_colour(None, None, None, None, 32, None)
        return SourceInfo("cam", "video", 32, 32, Fraction(fps), Fraction(1, 1000), None, 8, colour)

    slow_source = keep_up(preferred, RunConfig(model="auto"), info(Fraction(1, 30)))  # a frame every 30 s
    assert slow_source is preferred
    fast = keep_up(preferred, RunConfig(model="auto"), info(Fraction(1000)))
    assert fast.runner.spec.name == "rt-focuser" and "uhdvd takes" in fast.fallback
    assert keep_up(preferred, RunConfig(model="uhdvd"), info(Fraction(1000))) is preferred  # asked for: kept
