"""A real RTSP server on loopback for the live-mode tests (GStreamer's gst-rtsp-server).

Run with the system interpreter, which has the GObject bindings (python3-gi); the tests start
it as a subprocess so they can stop, restart and freeze it mid-run:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --clip clip.mp4 [--record received.ts]

`/clip` plays CLIP (H.264 in MP4) in real time, from its start for every client. With
`--record`, `/pub` accepts a published H.264 stream (ANNOUNCE/RECORD) and writes it to that
file as MPEG-TS, which is readable even if the publisher disappears mid-stream. Prints
`ready` on stdout once it listens; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def factory(launch: str, record: bool = False) -> GstRtspServer.RTSPMediaFactory:
    media = GstRtspServer.RTSPMediaFactory()
    media.set_launch(launch)
    if record:
        media.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
        media.set_latency(50)
    return media


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--record")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    play = f'( filesrc location="{args.clip}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )'
    mounts.add_factory("/clip", factory(play))
    if args.record:
        record = f'( rtph264depay name=depay0 ! h264parse ! mpegtsmux ! filesink location="{args.record}" sync=false )'
        mounts.add_factory("/pub", factory(record, record=True))
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
