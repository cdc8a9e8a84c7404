"""A smart-HTTP git server on 127.0.0.1, for tests and benchmarks.

``git http-backend`` (git's own server side of the smart HTTP protocol, protocol v2
included) runs as a CGI program behind Python's ``http.server``, over TLS with a
throwaway certificate (the orchestrator allows https, not plain http). Optional HTTP
basic auth, an optional redirect of every request to another server, and a hook
that runs while a request is being served, when the client git is alive and waiting.

    with GitHttpServer(root, tls=make_certificate(tmp), credentials=("bot", "s3cret")) as server:
        url = server.url("upstream.git", user="bot", password="s3cret")
        # git needs GIT_SSL_CAINFO=<tls.cert> to trust the server

Every request is recorded (``server.requests``) with whether it was authorized.
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlsplit


@dataclass(frozen=True, slots=True, kw_only=True)
class Tls:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""

    cert: Path
    key: Path


def make_certificate(directory: Path) -> Tls:
    """A fresh self-signed certificate in ``directory`` (needs the openssl program)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl program is needed to make a test certificate")
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(cert=directory / "cert.pem", key=directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(tls.key), "-out", str(tls.cert)],
        check=True, capture_output=True,
    )
    return tls


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str  # with the query string
    authorization: str | None  # the raw header, if any
    authorized: bool


class GitHttpServer:
    """Serves the bare repositories under ``root`` at ``https://127.0.0.1:<port>/<name>``."""

    def __init__(
        self,
        root: Path,
        *,
        tls: Tls | None,
        credentials: tuple[str, str] | None = None,
        redirect_to: str | None = None,
        on_request: Callable[[Request], None] | None = None,
    ) -> None:
        self.root = root
        self.tls = tls
        self.credentials = credentials
        self.redirect_to = redirect_to.rstrip("/") if redirect_to else None
        self.on_request = on_request
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="git-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def url(self, repo: str, *, user: str | None = None, password: str | None = None) -> str:
        """The URL of ``repo`` (relative to root), with percent-encoded userinfo if given."""
        userinfo = ""
        if user is not None:
            userinfo = quote(user, safe="")
            if password is not None:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        scheme, rest = self.base.split("://", 1)
        return f"{scheme}://{userinfo}{rest}/{repo}"

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (http.server's name)
            pass  # quiet: tests read server.requests instead

        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            body = self._body()
            header = self.headers.get("Authorization")
            authorized = server.credentials is None or header == _basic(*server.credentials)
            request = Request(method=self.command, path=self.path, authorization=header, authorized=authorized)
            server.record(request)
            if server.redirect_to is not None:
                self._reply(302, b"", {"Location": server.redirect_to + self.path})
                return
            if not authorized:
                self._reply(401, b"authentication required\n", {"WWW-Authenticate": 'Basic realm="git"'})
                return
            if server.on_request is not None:
                server.on_request(request)
            self._cgi(body, header)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _cgi(self, body: bytes, authorization: str | None) -> None:
            url = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": "/nonexistent",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": "/dev/null",
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0],
                "REMOTE_USER": server.credentials[0] if server.credentials and authorization else "",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = done.stdout.partition(b"\n\n")
            status, headers = 200, {}
            for line in head.decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers[key] = value.strip()
            self._reply(status, payload, headers)

        def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def processes_showing(secret: str) -> list[tuple[int, str]]:
    """Every process whose argv (what any user sees in ``ps``) contains ``secret``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if secret.encode() in argv:
            found.append((int(entry.name), argv.replace(b"\0", b" ").decode(errors="replace")))
    return found
