"""A loopback HTTP proxy in front of a test registry that can go down or hang on cue.

The registry is real (tests/helpers/registry.py); the proxy forwards each request to it
(keeping the Host header, so the upload locations it hands out point back here) and,
on cue, misbehaves as a registry does in the field:

- ``down_after_manifests=N``: after N manifests have been stored through it, it stops
  answering: open connections are closed and new ones refused (the registry went away
  mid-build);
- ``stall_manifests=True``: a manifest upload is held forever (``stalled`` is set), as a
  hung registry or a killed writer would leave it: blobs are there, the entry never is.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultProxy:
    def __init__(self, upstream: str, *, down_after_manifests: int | None = None,
                 stall_manifests: bool = False) -> None:
        self.upstream = upstream
        self.down_after_manifests = down_after_manifests
        self.stall_manifests = stall_manifests
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.manifests = 0
        self.down = False
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _any(self) -> None:
                proxy.forward(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        if self.down:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        body = _body(handler)
        manifest_put = handler.command == "PUT" and "/manifests/" in handler.path
        self.requests.append(f"{handler.command} {handler.path.split('?')[0]}")
        if manifest_put and self.stall_manifests:
            self.stalled.set()
            self.released.wait()
            handler.close_connection = True
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "transfer-encoding"}
            headers["Content-Length"] = str(len(body))
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        handler.send_response(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
        if manifest_put and reply.status < 300:
            self.manifests += 1
            if self.down_after_manifests is not None and self.manifests >= self.down_after_manifests:
                self.go_down()

    def go_down(self) -> None:
        """Refuse every connection from now on (the listening socket is closed)."""
        self.down = True
        threading.Thread(target=self.server.shutdown, daemon=True).start()
        self.server.socket.close()

    def close(self) -> None:
        self.released.set()
        if not self.down:
            self.server.shutdown()
        self.server.server_close()


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, by Content-Length or chunked (as the Docker engine sends layers)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        data = bytearray()
        while True:
            size = int(handler.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(data)
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
