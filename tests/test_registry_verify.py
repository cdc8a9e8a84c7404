"""What the registry really holds: `verify --registry` and `publish` ask it (registry HTTP
API v2) instead of trusting release.json. A real local registry (Debian's docker-registry)
has a tag deleted by hand and another pushed over; a registry that wants a bearer token,
one that lies about its digest, one that redirects, and one that is down are loopback
servers written here."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import record
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.publish import publish_release
from orchestrator.registryapi import ACCEPT, RegistryAPI, RegistryUnreachable, locate
from orchestrator.verify import VerifyReport, format_report, verify_release
from tests.helpers.cli import run_cli
from tests.helpers.registry import APP_COMMIT, Registry, docker_config_with, free_port, make_release, small_manifest

IMAGES = ("orchestrator-test/verify-a", "orchestrator-test/verify-b")


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def two_images(tmp_path: Path, docker_engine: Engine) -> Iterator[tuple[Path, Manifest]]:
    """A release of two FROM scratch images built by the real engine, under a unique tag."""
    tag = "t" + uuid.uuid4().hex[:12]  # other sessions may share the engine
    artifacts = "".join(f"      {name}:\n        type: image\n        dockerfile: {name[-1]}.Dockerfile\n"
                        for name in IMAGES)
    manifest = small_manifest(tmp_path, f"schema: 1\nrelease: {tag}\nrepos:\n  app:\n"
                                        f"    url: https://example.invalid/app.git\n    ref: v1\n"
                                        f"    commit: {APP_COMMIT}\n    artifacts:\n{artifacts}")
    context = tmp_path / "context"
    context.mkdir()
    ids = {}
    for name in IMAGES:
        (context / f"{name[-1]}.txt").write_text(f"{name} {tag}\n")
        (context / "Dockerfile").write_text(f"FROM scratch\nCOPY {name[-1]}.txt /\n")
        ids[name] = docker_engine.build_image(context=context, dockerfile="Dockerfile", tags=(f"{name}:{tag}",),
                                              buildargs={}, target=None, labels={}, network_mode="none",
                                              log=Lines()).id
    make_release(tmp_path / "dist" / tag, manifest, ids,
                 layers={name: docker_engine.image_layers(image_id) for name, image_id in ids.items()})
    yield tmp_path / "dist" / tag, manifest
    import docker

    client = docker.from_env()
    for image in client.images.list():
        if any(t.endswith(f":{tag}") for t in image.tags):
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(image.id, force=True)
    client.close()


def registry_failures(report: VerifyReport) -> dict[str, str]:
    return {c.what: c.detail for c in report.checks if c.area == "registry" and c.ok is not True}


@pytest.mark.docker
def test_a_tag_deleted_and_a_tag_pushed_over_in_a_real_registry_are_named_and_publish_restores_them(
    two_images: tuple[Path, Manifest], registry: Registry, docker_engine: Engine, tmp_path: Path
) -> None:
    release_dir, manifest = two_images
    publish_release(release_dir, manifest, docker_engine, registry=f"{registry.address}/", log=Lines())
    refs = {name: f"{registry.address}/{name}:{manifest.release}" for name in IMAGES}
    digests = {name: p.digest for name in IMAGES for p in record.read(release_dir).artifacts[name].images[0]
               .pushed.values()}

    def verify() -> VerifyReport:
        return verify_release(release_dir, manifest, engine=docker_engine, commits=None, registry=RegistryAPI(),
                              skip=("signature", "pins"))

    assert verify().ok, format_report(verify())
    # By hand: a's tag deleted from the registry's storage, b's tag pushed over with a's image.
    shutil.rmtree(tmp_path / f"data/docker/registry/v2/repositories/{IMAGES[0]}/_manifests/tags/{manifest.release}")
    docker_engine.tag(refs[IMAGES[0]].removeprefix(f"{registry.address}/"), refs[IMAGES[1]])
    docker_engine.push(refs[IMAGES[1]], log=Lines())

    found = registry_failures(verify())

    assert found == {
        f"registry {refs[IMAGES[0]]} ({IMAGES[0]})":
            f"not in the registry: the tag was deleted (release.json records {digests[IMAGES[0]]})",
        f"registry {refs[IMAGES[1]]} ({IMAGES[1]})":
            f"now names {digests[IMAGES[0]]}, release.json records {digests[IMAGES[1]]} (pushed over since)",
    }
    cli = run_cli("verify", "--registry", "--skip", "signature,pins", "--manifest", str(manifest.path),
                  "--workspace", str(tmp_path), program="orchestrator", cwd=tmp_path)
    assert cli.returncode == 1 and "does not verify: 2 mismatch(es)" in cli.stderr, cli.stdout + cli.stderr
    assert f"[FAIL]  registry {refs[IMAGES[0]]} ({IMAGES[0]}): not in the registry" in cli.stdout

    docker_engine.tag(refs[IMAGES[1]].removeprefix(f"{registry.address}/"), refs[IMAGES[1]])  # put back
    lines = Lines()
    again = publish_release(release_dir, manifest, docker_engine, registry=f"{registry.address}/", log=lines)

    assert not again.already_published and {p.ref for p in again.pushed} == set(refs.values())
    assert f"{refs[IMAGES[0]]} is no longer in the registry (deleted since it was pushed); pushing it again" in lines
    assert f"{refs[IMAGES[1]]} now names {digests[IMAGES[0]]} in the registry, not the recorded " \
           f"{digests[IMAGES[1]]}; pushing the recorded image again" in lines
    assert {p.digest for p in again.pushed} == set(digests.values()), "the same image gets the same digest"
    assert verify().ok
    assert publish_release(release_dir, manifest, docker_engine, registry=f"{registry.address}/",
                           log=Lines()).already_published


@pytest.mark.docker
def test_credentials_come_from_the_docker_config_and_a_refused_login_is_one_line(
    two_images: tuple[Path, Manifest], auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release_dir, manifest = two_images
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config_with(tmp_path, auth_registry)))
    report = publish_release(release_dir, manifest, Engine.from_env(), registry=f"{auth_registry.address}/",
                             log=Lines())
    ref, digest = report.pushed[0].ref, report.pushed[0].digest

    assert RegistryAPI().manifest_digest(ref) == digest
    assert RegistryAPI().manifest_digest(ref.rpartition(":")[0] + ":no-such-tag") is None

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
    with pytest.raises(RegistryUnreachable, match="it wants credentials, and the Docker config has none for it"):
        RegistryAPI().manifest_digest(ref)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config_with(wrong, auth_registry, password="wrong-Pa55")))
    with pytest.raises(RegistryUnreachable) as caught:
        RegistryAPI().manifest_digest(ref)
    assert str(caught.value).startswith(f"registry {auth_registry.address} cannot be asked: it refused the "
                                        "credentials of the Docker config")
    report_lines = format_report(verify_release(release_dir, manifest, engine=None, commits=None,
                                                registry=RegistryAPI(), skip=("signature", "pins", "images")))
    assert f"[--]    registry {auth_registry.address}: cannot be asked: it refused the credentials" in report_lines
    assert "wrong-Pa55" not in report_lines and "s3cret" not in report_lines


def test_a_registry_nobody_listens_on_is_named_once_and_its_references_not_checked(
    tmp_path: Path, manifest: Manifest
) -> None:
    from tests.helpers.fake_docker import FakeDockerClient
    from tests.helpers.registry import add_images

    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(FakeDockerClient(), manifest))
    address = f"127.0.0.1:{free_port()}"
    data = json.loads((release_dir / "release.json").read_text())
    image = data["artifacts"]["app/image"]["images"][0]
    image["pushed"] = {f"{address}/app/image:{t}": {"digest": "sha256:" + "d" * 64, "id": image["id"]}
                       for t in ("v1.0.0", "latest")}
    (release_dir / "release.json").write_text(json.dumps(data))

    report = verify_release(release_dir, manifest, engine=None, commits=None, registry=RegistryAPI(),
                            skip=("images", "pins", "signature", ))

    assert registry_failures(report) == {
        f"registry {address}": "cannot be asked: connection refused; 2 pushed reference(s) not checked"}
    assert not report.ok and report.unchecked and not [c for c in report.failures if c.area == "registry"]


# -- registries written here: bearer tokens, a liar, a redirect ---------------------------------

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {}, "layers": []}).encode()


class FakeRegistry(http.server.BaseHTTPRequestHandler):
    """A registry on loopback that wants a bearer token from its own token service (which
    wants Basic ci:pw), or lies about its digest (``lie``), or redirects (``redirect``)."""

    lie = False
    redirect: str | None = None
    seen: list[tuple[str, str | None]] = []  # (path, Authorization)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        auth = self.headers.get("Authorization")
        self.seen.append((self.path, auth))
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token?"):
            if auth != "Basic " + base64.b64encode(b"ci:pw").decode():
                return self._send(401, b"{}")
            return self._send(200, json.dumps({"token": "tok-" + self.path.split("scope=")[1]}).encode())
        if self.path.startswith("/elsewhere/"):
            return self._send(200, MANIFEST, digest=True)
        if auth is None or not auth.startswith("Bearer tok-repository"):
            return self._send(401, b"{}", challenge=f'Bearer realm="http://{host}/token",service="fake"')
        if self.headers.get("Accept") != ACCEPT:
            return self._send(400, b"{}")
        if self.redirect:
            return self._send(307, b"", location=self.redirect)
        if self.path.endswith("/manifests/gone"):
            return self._send(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')
        return self._send(200, MANIFEST, digest=True)

    def _send(self, status: int, body: bytes, *, challenge: str = "", digest: bool = False,
              location: str = "") -> None:
        self.send_response(status)
        if challenge:
            self.send_header("WWW-Authenticate", challenge)
        if location:
            self.send_header("Location", location)
        if digest:
            claimed = hashlib.sha256(body + (b" " if self.lie else b"")).hexdigest()
            self.send_header("Docker-Content-Digest", f"sha256:{claimed}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_registry() -> Iterator[str]:
    FakeRegistry.lie, FakeRegistry.redirect, FakeRegistry.seen = False, None, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def config_for(address: str) -> dict[str, Any]:
    return {"auths": {address: {"auth": base64.b64encode(b"ci:pw").decode()}}}


def test_a_registry_that_wants_a_bearer_token_gets_one_from_its_token_service(fake_registry: str) -> None:
    api = RegistryAPI(config=config_for(fake_registry))

    assert api.manifest_digest(f"{fake_registry}/team/app:v1") == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert api.manifest_digest(f"{fake_registry}/team/app:gone") is None
    token_requests = [path for path, _ in FakeRegistry.seen if path.startswith("/token?")]
    assert token_requests == ["/token?service=fake&scope=repository%3Ateam%2Fapp%3Apull"], "one token, reused"
    with pytest.raises(RegistryUnreachable, match="its token service answered HTTP 401 without a token"):
        RegistryAPI(config={"auths": {fake_registry: {"auth": base64.b64encode(b"ci:bad").decode()}}}) \
            .manifest_digest(f"{fake_registry}/team/app:v1")


def test_a_registry_whose_digest_header_disagrees_with_what_it_sent_is_not_believed(fake_registry: str) -> None:
    FakeRegistry.lie = True

    with pytest.raises(RegistryUnreachable, match="it says the manifest is sha256:.*, but what it sent is sha256:"):
        RegistryAPI(config=config_for(fake_registry)).manifest_digest(f"{fake_registry}/team/app:v1")


def test_a_redirect_is_followed_without_the_credentials(fake_registry: str) -> None:
    FakeRegistry.redirect = f"http://{fake_registry}/elsewhere/blob"

    assert RegistryAPI(config=config_for(fake_registry)).manifest_digest(f"{fake_registry}/team/app:v1")
    assert FakeRegistry.seen[-1] == ("/elsewhere/blob", None)


def test_references_name_the_registry_host_repository_and_tag_as_docker_does() -> None:
    assert locate("calico/node:v3.2.0") == ("docker.io", "registry-1.docker.io", "calico/node", "v3.2.0")
    assert locate("busybox") == ("docker.io", "registry-1.docker.io", "library/busybox", "latest")
    assert locate("127.0.0.1:5000/a/b:1") == ("127.0.0.1:5000", "127.0.0.1:5000", "a/b", "1")
    assert locate("quay.io/calico/node:v3") == ("quay.io", "quay.io", "calico/node", "v3")


def test_a_registry_that_accepts_but_never_answers_is_given_up_on_once_not_per_scheme() -> None:
    import socket
    import time

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # connections are accepted by the kernel, and never answered
        address = f"127.0.0.1:{server.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(RegistryUnreachable, match=f"registry {address} cannot be asked: no answer in time"):
            RegistryAPI(config={}, timeout=0.5).manifest_digest(f"{address}/team/app:v1")
        assert time.monotonic() - started < 5, "not retried over plain HTTP after HTTPS timed out"
