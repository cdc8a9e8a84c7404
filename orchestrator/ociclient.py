"""A small client of the OCI distribution API (the registry HTTP API v2), for one repository.

The remote build cache (``remotecache``) keeps files as OCI artifacts: blobs named by
their sha256 and a manifest that lists them, pushed and pulled here. Images go through
the Docker engine instead (``ContainerEngine.push``/``pull``), which speaks to the same
registry with the same credentials.

Not the ORAS Python SDK (``oras`` on PyPI, 0.2.x), although that is what it does: its
requests have no timeout (a registry that stops answering hangs the build), every
failed request is retried with sleeps that add up to minutes (a registry that is down
must cost a warning, not minutes per artifact), it reads credentials only from
``~/.docker/config.json`` (not ``$DOCKER_CONFIG``), its default token backend cannot
answer a plain ``Basic`` challenge (htpasswd registries), it does not check a pulled
blob against its digest, and it logs to the console. This client does only what the
cache needs, with those fixed: bounded timeouts, no retries (a miss is cheap), the
Docker config's credentials (Basic, or exchanged for a Bearer token), every byte read
checked against its digest, and messages without credentials.

Plain HTTP for loopback registries (``127.0.0.1:5000``, ``localhost:5000``), as the
Docker engine treats them; HTTPS everywhere else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from orchestrator import commandlog
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    import requests

Problem = Literal["unreachable", "denied", "corrupt", "refused"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# A repository as `docker push` takes it: a registry host (with a dot, a port or
# localhost), then lower-case path components; no tag, no digest.
_REPOSITORY = re.compile(r"(?P<host>(?:[a-zA-Z0-9.-]+\.[a-zA-Z0-9.-]+|localhost|\[[0-9a-fA-F:]+\]|[a-zA-Z0-9-]+)"
                         r"(?::[0-9]{1,5})?)/(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                         r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)")
_LOOPBACK = re.compile(r"(?:127(?:\.[0-9]{1,3}){3}|localhost|\[::1\])(?::[0-9]+)?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHALLENGE = re.compile(r'([A-Za-z]+)="([^"]*)"')


class RegistryError(OrchestratorError):
    """A registry request failed; ``problem`` says how (unreachable, denied, corrupt, refused)."""

    def __init__(self, message: str, *, problem: Problem, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.problem = problem


@dataclass(frozen=True, slots=True, kw_only=True)
class Repository:
    """``registry.example.com/team/release-cache`` split into its host and path."""

    host: str
    path: str

    def __str__(self) -> str:
        return f"{self.host}/{self.path}"

    @property
    def scheme(self) -> str:
        return "http" if _LOOPBACK.fullmatch(self.host) else "https"


def repository_problem(ref: str) -> str | None:
    """Why ``ref`` cannot name a cache repository, or None."""
    if "://" in ref:
        return "give it without a scheme (a loopback registry is spoken to over HTTP, others over HTTPS)"
    if "@" in ref or re.search(r":[^/]*$", ref.split("/", 1)[-1] if "/" in ref else ""):
        return "name a repository, without a tag or digest (the cache keys become its tags)"
    match = _REPOSITORY.fullmatch(ref)
    if match is None:
        return "expected HOST[:PORT]/PATH with a lower-case path, e.g. registry.example.com/team/release-cache"
    host = match["host"]
    if "." not in host and ":" not in host and host != "localhost":
        return f"{host!r} is not a registry host (give one with a dot or a port, or localhost)"
    return None


def parse_repository(ref: str) -> Repository:
    """A Repository from a checked reference (``repository_problem`` is None)."""
    host, _, path = ref.partition("/")
    return Repository(host=host, path=path)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_credentials(host: str, env: dict[str, str] | None = None) -> str | None:
    """The base64 ``user:password`` that ``docker login HOST`` saved in the Docker config
    (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``), or None. Credential
    stores (``credsStore``) are not asked: their helpers are programs, and CI logins
    (docker/login-action, ``docker login`` without a helper) write the ``auths`` entry."""
    env = dict(os.environ) if env is None else env
    directory = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path.home() / ".docker"
    try:
        with open(directory / "config.json", "rb") as f:
            config = json.loads(f.read(MAX_MANIFEST_BYTES))
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        name = str(key).removeprefix("https://").removeprefix("http://").split("/", 1)[0]
        if name == host and isinstance(entry, dict):
            if isinstance(entry.get("auth"), str) and entry["auth"]:
                return str(entry["auth"])
            if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
                return base64.b64encode(f"{entry['username']}:{entry['password']}".encode()).decode()
    return None


class Client:
    """Blobs and manifests of one repository. Safe to share between threads."""

    def __init__(self, repository: Repository, *, connect_timeout: float = 10.0, read_timeout: float = 60.0,
                 credentials: str | None = None) -> None:
        self.repository = repository
        self.base = f"{repository.scheme}://{repository.host}/v2/{repository.path}/"
        self.timeout = (connect_timeout, read_timeout)
        self._basic = credentials
        self._authorization: str | None = None  # the header that last worked
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- requests -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = self._local.session = requests.Session()
            # A loopback registry is spoken to directly (no HTTP_PROXY detour); any other
            # with the environment's proxies and CA bundle (REQUESTS_CA_BUNDLE), as requests does.
            session.trust_env = self.repository.scheme == "https"
        return session

    def _request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                 body: bytes | Path | None = None, stream: bool = False) -> requests.Response:
        """One request, answering one authentication challenge (401) with the Docker config's
        credentials. RegistryError when the registry cannot be reached or refuses them."""
        import requests

        what = f"{method} {self._shown(url)}"
        for attempt in (1, 2):
            sent = dict(headers or {})
            with self._lock:
                if self._authorization:
                    sent["Authorization"] = self._authorization
            handle: IO[bytes] | None = None
            started = time.monotonic()
            try:
                data: bytes | IO[bytes] | None = body if not isinstance(body, Path) else None
                if isinstance(body, Path):
                    handle = data = open(body, "rb")  # noqa: SIM115 - closed below, reopened on a retry
                response = self._session().request(method, url, headers=sent, data=data, stream=stream,
                                                   timeout=self.timeout, allow_redirects=True)
                commandlog.ran("registry", what, f"HTTP {response.status_code}", time.monotonic() - started)
            except requests.Timeout as e:
                raise RegistryError(f"{self.repository.host} did not answer {what} in time ({type(e).__name__})",
                                    problem="unreachable") from e
            except requests.RequestException as e:
                raise RegistryError(f"cannot reach {self.repository.host} ({what}): {_reason(e)}",
                                    problem="unreachable") from e
            finally:
                if handle is not None:
                    handle.close()
            if response.status_code != 401 or attempt == 2:
                break
            response.close()
            self._authorize(response.headers.get("WWW-Authenticate", ""))
        if response.status_code in (401, 403):
            response.close()
            given = "the credentials in the Docker config were refused" if self._basic else \
                "no credentials for it in the Docker config"
            raise RegistryError(f"{self.repository.host} refused {what}: {given} (HTTP {response.status_code})",
                                problem="denied", hint=f"docker login {self.repository.host}")
        return response

    def _authorize(self, challenge: str) -> None:
        """Answer a ``WWW-Authenticate`` challenge: Basic with the saved login, or Bearer
        with a token the challenge's realm gives for it."""
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self._basic:
                with self._lock:
                    self._authorization = f"Basic {self._basic}"
            return
        if scheme != "bearer":
            return
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            return
        headers = {"Authorization": f"Basic {self._basic}"} if self._basic else {}
        import requests

        try:
            reply = self._session().get(realm, params=params, headers=headers, timeout=self.timeout)
            token = reply.json().get("token") or reply.json().get("access_token") if reply.ok else None
        except (requests.RequestException, ValueError, AttributeError):
            token = None
        if isinstance(token, str) and token:
            with self._lock:
                self._authorization = f"Bearer {token}"

    def _shown(self, url: str) -> str:
        """A URL as messages show it: without the query (upload sessions carry state there)."""
        return url.split("?", 1)[0]

    def _failure(self, response: requests.Response, what: str) -> RegistryError:
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join(str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            pass
        response.close()
        return RegistryError(f"{self.repository.host}: {what} failed: HTTP {response.status_code}"
                             + (f" ({detail[:200]})" if detail else ""), problem="refused")

    # -- manifests ------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """The manifest under ``reference`` (a tag or a digest) and its digest; None when
        there is none. A manifest whose bytes do not match the digest asked for (or the one
        the registry announces) is RegistryError(corrupt)."""
        response = self._request("GET", self.base + f"manifests/{reference}", headers={"Accept": OCI_MANIFEST},
                                 stream=True)
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise self._failure(response, f"reading manifest {reference}")
        data = _read_bounded(response, MAX_MANIFEST_BYTES, f"manifest {reference}")
        digest = sha256_digest(data)
        announced = response.headers.get("Docker-Content-Digest")
        expected = reference if _DIGEST.fullmatch(reference) else announced
        if expected and expected != digest:
            raise RegistryError(f"{self.repository}:{reference}: the manifest's bytes hash to {digest}, "
                                f"not {expected}", problem="corrupt")
        return data, digest

    def put_manifest(self, tag: str, data: bytes, media_type: str = OCI_MANIFEST) -> str:
        """Store ``data`` as the manifest tagged ``tag``; returns its digest."""
        response = self._request("PUT", self.base + f"manifests/{tag}", headers={"Content-Type": media_type},
                                 body=data)
        if response.status_code not in (200, 201, 202):
            raise self._failure(response, f"storing manifest {tag}")
        response.close()
        return sha256_digest(data)

    # -- blobs ----------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        response = self._request("HEAD", self.base + f"blobs/{digest}")
        response.close()
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise self._failure(response, f"looking up blob {digest}")

    def put_blob(self, digest: str, body: bytes | Path, size: int) -> bool:
        """Upload a blob unless the registry has it; True when it was sent. The registry
        checks the bytes against ``digest`` itself: two writers of one blob are harmless."""
        if self.has_blob(digest):
            return False
        response = self._request("POST", self.base + "blobs/uploads/")
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self._failure(response, f"starting the upload of blob {digest}")
        response.close()
        location = urllib.parse.urljoin(self.base, response.headers["Location"])
        separator = "&" if "?" in location else "?"
        put = self._request("PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", body=body,
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        if put.status_code not in (200, 201, 204):
            raise self._failure(put, f"uploading blob {digest}")
        put.close()
        return True

    def blob_chunks(self, digest: str, size: int) -> Iterator[bytes]:
        """The bytes of blob ``digest``, checked as they come: RegistryError(corrupt) at the
        end (or as soon as it is too long) when its size or sha256 differs, so a writer that
        renames only after the last chunk never publishes a damaged copy."""
        import requests

        response = self._request("GET", self.base + f"blobs/{digest}", stream=True)
        if response.status_code != 200:
            raise self._failure(response, f"reading blob {digest}")
        hasher, received = hashlib.sha256(), 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 20):
                received += len(chunk)
                if received > size:
                    raise RegistryError(f"blob {digest} is longer than the {size} bytes recorded", problem="corrupt")
                hasher.update(chunk)
                yield chunk
        except requests.RequestException as e:
            raise RegistryError(f"reading blob {digest} from {self.repository.host} broke off: {_reason(e)}",
                                problem="unreachable") from e
        finally:
            response.close()
        if received != size or "sha256:" + hasher.hexdigest() != digest:
            raise RegistryError(f"blob {digest} came back as {received} bytes hashing to sha256:"
                                f"{hasher.hexdigest()}: the registry's copy is damaged", problem="corrupt")

    def get_small_blob(self, digest: str, size: int) -> bytes:
        return b"".join(self.blob_chunks(digest, size))


def _read_bounded(response: requests.Response, limit: int, what: str) -> bytes:
    import requests

    data = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=65536):
            data += chunk
            if len(data) > limit:
                raise RegistryError(f"{what} is larger than {limit} bytes", problem="corrupt")
    except requests.RequestException as e:
        raise RegistryError(f"reading {what} broke off: {_reason(e)}", problem="unreachable") from e
    finally:
        response.close()
    return bytes(data)


def _reason(error: BaseException) -> str:
    """The innermost readable cause of a requests error (connection refused, ...)."""
    text = str(error)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                   "Connection reset", "Remote end closed", "certificate verify failed", "wrong version number"):
        if marker.lower() in text.lower():
            return marker.lower()
    return type(error).__name__ + (f": {text[:160]}" if text else "")


def json_bytes(document: Any) -> bytes:
    """Canonical JSON: the same document is always the same bytes (and the same digest)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
