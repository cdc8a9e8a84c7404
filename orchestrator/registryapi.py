"""What a registry holds under a tag: the digest of its manifest, asked over the registry
HTTP API v2 (the OCI distribution spec), without a Docker engine.

``GET /v2/<name>/manifests/<tag>`` with every manifest type the engine pushes in
``Accept``, so the registry returns the manifest as it was pushed (a registry asked for
fewer types may convert it, and the digest would change). The digest is the sha256 of
the bytes received, computed here: a registry's ``Docker-Content-Digest`` header that
disagrees with them is reported, never believed. A tag that is not there (404) is
``None``.

Credentials are the Docker config's (``docker login``: ``$DOCKER_CONFIG/config.json``
or ``~/.docker/config.json``, credential helpers included, read through docker-py), as
for ``publish``. A registry that answers 401 gets them as Basic auth, or, when it asks
for a bearer token (``WWW-Authenticate: Bearer realm=...``), they are exchanged at its
token service for a pull token of that repository. Credentials go only to the host that
asked for them (never through a redirect). Loopback registries (127.0.0.0/8, ::1,
localhost) are spoken to over plain HTTP when HTTPS fails, as dockerd does by default;
every other registry only over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from orchestrator.errors import OrchestratorError
from orchestrator.imageref import split_registry, split_tag
from orchestrator.redact import redact

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
DOCKER_HUB = "registry-1.docker.io"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's limit for a manifest
TIMEOUT = 20.0
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(OrchestratorError):
    """The registry could not be asked (down, refused our credentials, answered nonsense)."""

    def __init__(self, registry: str, why: str) -> None:
        super().__init__(f"registry {registry} cannot be asked: {why}",
                         hint="check that it is up and reachable from here, and `docker login` to it")
        self.registry, self.why = registry, why


class ManifestDigests(Protocol):
    """What ``verify --registry`` and ``publish`` ask a registry (tests substitute their own)."""

    def manifest_digest(self, ref: str) -> str | None:
        """The digest (``sha256:...``) of the manifest ``ref`` names in its registry, None
        when the registry has no such tag; RegistryUnreachable when it cannot be asked."""


def locate(ref: str) -> tuple[str, str, str, str]:
    """(registry as named, host to connect to, repository, tag) of a tag reference."""
    registry, rest = split_registry(ref)
    repository, tag = split_tag(rest)
    if registry is None:
        return "docker.io", DOCKER_HUB, repository if "/" in repository else f"library/{repository}", tag or "latest"
    return registry, registry, repository, tag or "latest"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryAPI:
    """Asks registries over HTTP; credentials from the Docker config (``config``: a parsed
    config.json, for tests; None reads the user's, as docker-py does)."""

    def __init__(self, *, config: Mapping[str, Any] | None = None, timeout: float = TIMEOUT) -> None:
        self._config, self.timeout = config, timeout
        self._auths: Any = None
        self._schemes: dict[str, str] = {}  # host -> the scheme that answered
        self._tokens: dict[tuple[str, str], str] = {}  # (host, repository) -> bearer token
        self._opener = urllib.request.build_opener(_Redirects)

    def manifest_digest(self, ref: str) -> str | None:
        registry, host, repository, tag = locate(ref)
        path = f"/v2/{repository}/manifests/{urllib.parse.quote(tag, safe='')}"
        status, headers, body = self._get(registry, host, repository, path)
        if status == 404:
            return None
        if status != 200:
            raise RegistryUnreachable(registry, f"GET {path} answered HTTP {status}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        claimed = headers.get("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise RegistryUnreachable(registry, f"{ref}: it says the manifest is {claimed}, but what it sent is "
                                                f"{digest}")
        return digest

    # -- HTTP ---------------------------------------------------------------------------------

    def _get(self, registry: str, host: str, repository: str, path: str) -> tuple[int, Mapping[str, str], bytes]:
        auth = self._tokens.get((host, repository))
        status, headers, body = self._request(registry, host, path, auth)
        if status == 401:
            auth = self._authorize(registry, host, repository, headers.get("WWW-Authenticate", ""))
            status, headers, body = self._request(registry, host, path, auth)
            if status == 401:
                raise RegistryUnreachable(registry, "it refused the credentials of the Docker config"
                                          if self._credentials(registry) else
                                          "it wants credentials, and the Docker config has none for it")
        return status, headers, body

    def _request(self, registry: str, host: str, path: str, auth: str | None,
                 *, base: str | None = None) -> tuple[int, Mapping[str, str], bytes]:
        schemes = [self._schemes[host]] if host in self._schemes else \
            (["https", "http"] if is_loopback(host) else ["https"])
        last: Exception | None = None
        for scheme in schemes:
            request = urllib.request.Request(base or f"{scheme}://{host}{path}", headers={"Accept": ACCEPT})
            if auth:
                request.add_unredirected_header("Authorization", auth)
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    status, headers, body = response.status, response.headers, _bounded(response)
            except urllib.error.HTTPError as e:
                status, headers, body = e.code, e.headers, b""
            except (OSError, http.client.HTTPException, ValueError) as e:  # refused, reset, TLS, timeout
                last = e
                if _timed_out(e):
                    break  # a host that does not answer will not answer over HTTP either
                continue
            if base is None:
                self._schemes[host] = scheme
            return status, headers, body
        raise RegistryUnreachable(registry, redact(_reason(last)))

    def _authorize(self, registry: str, host: str, repository: str, challenge: str) -> str:
        """The Authorization header for a 401's ``WWW-Authenticate``: Basic with the Docker
        config's credentials, or a bearer token from the realm it names."""
        scheme = challenge.split(" ", 1)[0].lower()
        credentials = self._credentials(registry)
        if scheme == "basic":
            if credentials is None or "password" not in credentials:
                raise RegistryUnreachable(registry, "it wants credentials, and the Docker config has none for it")
            user_pass = f"{credentials['username']}:{credentials['password']}".encode()
            return "Basic " + base64.b64encode(user_pass).decode()
        if scheme != "bearer":
            raise RegistryUnreachable(registry, f"it asks for {challenge.split(' ', 1)[0] or 'no'} authentication, "
                                                "which this orchestrator does not speak")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.get("realm", "")
        parsed = urllib.parse.urlparse(realm)
        if parsed.scheme not in ("https", "http") or (parsed.scheme == "http" and not is_loopback(parsed.netloc)):
            raise RegistryUnreachable(registry, f"its token service {realm!r} is not an https URL")
        query = {"service": params.get("service", ""), "scope": f"repository:{repository}:pull"}
        basic = None
        if credentials is not None and "password" in credentials:
            user_pass = f"{credentials['username']}:{credentials['password']}".encode()
            basic = "Basic " + base64.b64encode(user_pass).decode()
        status, _, body = self._request(registry, parsed.netloc, "", basic,
                                        base=f"{realm}?{urllib.parse.urlencode(query)}")
        token = None
        if status == 200:
            try:
                answer = json.loads(body)
                token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
            except ValueError:
                token = None
        if not isinstance(token, str) or not token:
            raise RegistryUnreachable(registry, f"its token service answered HTTP {status} without a token"
                                                + (" (credentials refused?)" if basic else ""))
        self._tokens[(host, repository)] = f"Bearer {token}"
        return f"Bearer {token}"

    def _credentials(self, registry: str) -> dict[str, str] | None:
        """{"username", "password"} from the Docker config for ``registry``, or None."""
        from docker import auth, errors  # type: ignore[import-untyped, unused-ignore]

        try:
            if self._auths is None:
                self._auths = auth.load_config(config_dict=dict(self._config) if self._config is not None else None)
            found = self._auths.resolve_authconfig(None if registry == "docker.io" else registry)
        except (errors.DockerException, OSError, ValueError) as e:
            raise RegistryUnreachable(registry, f"the Docker config cannot be read: {redact(str(e))}") from None
        if not found:
            return None
        user, password = found.get("username") or found.get("Username"), found.get("password") or found.get("Password")
        return {"username": str(user or ""), "password": str(password)} if password is not None else None


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed (a registry may serve from elsewhere), a few at most; the
    Authorization header is not carried along (added as an unredirected header)."""

    max_redirections = 5


def _bounded(response: Any) -> bytes:
    body: bytes = response.read(MAX_MANIFEST_BYTES + 1)
    if len(body) > MAX_MANIFEST_BYTES:
        raise ValueError(f"a manifest larger than {MAX_MANIFEST_BYTES} bytes")
    return body


def _timed_out(error: Exception) -> bool:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, TimeoutError)


def _reason(error: Exception | None) -> str:
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, Exception) else error
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error})"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
