"""A real Docker engine, real local registries (Debian's docker-registry), and a release to push.

Its fixtures (``docker_engine``, ``registry``, ``auth_registry``) are a pytest plugin
(tests/conftest.py): a test asks for them by name.

Each registry listens on a free 127.0.0.1 port, which the engine trusts over plain HTTP,
and stores its blobs under the test's tmp_path. Without an engine, the registry binary or
htpasswd, the test is skipped and says what to install or start.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import DockerUnavailableError
from orchestrator.manifest import Manifest
from tests.helpers.session_images import REGISTRIES


@dataclass(frozen=True)
class Registry:
    address: str  # host:port
    username: str | None = None
    password: str | None = None


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """An Engine on the real Docker engine, or a skip that says why there is none."""
    try:
        return Engine.from_env(timeout=60)
    except DockerUnavailableError as e:
        pytest.skip(f"no Docker engine answers: {e.message}; start one with .ci/docker-up")


def free_port() -> int:
    """A loopback port nobody listens on (now); also serves as a registry that is not there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(tmp_path: Path, *, auth: tuple[str, str] | None) -> Iterator[Registry]:
    """Run docker-registry on a free port until the generator is closed."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.skip("no container registry binary: apt-get install docker-registry (Debian's distribution registry)")
    port = free_port()
    config = [
        "version: 0.1",
        "log: {level: error}",
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}",
        f"http: {{addr: 127.0.0.1:{port}}}",
    ]
    if auth is not None:
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", *auth], check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
        ).stdout
        (tmp_path / "htpasswd").write_text(hashed)
        config.append(f"auth: {{htpasswd: {{realm: test, path: {tmp_path / 'htpasswd'}}}}}")
    (tmp_path / "config.yml").write_text("\n".join(config) + "\n")
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:  # 401: up, and asking for credentials
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the registry did not start: {(tmp_path / 'registry.log').read_text()}")
        REGISTRIES.add(f"127.0.0.1:{port}")  # its pushed tags are removed after the session
        yield Registry(f"127.0.0.1:{port}", *(auth or (None, None)))
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def registry(tmp_path: Path, docker_engine: Engine) -> Iterator[Registry]:
    """A local registry without authentication (the engine trusts 127.0.0.1 over plain HTTP)."""
    yield from start_registry(tmp_path, auth=None)


@pytest.fixture
def auth_registry(tmp_path: Path, docker_engine: Engine) -> Iterator[Registry]:
    """A local registry that wants user ``ci``."""
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is missing: apt-get install apache2-utils")
    yield from start_registry(tmp_path, auth=("ci", "s3cret-Pa55"))


def docker_config_with(tmp_path: Path, registry: Registry, *, password: str | None = None) -> Path:
    """A DOCKER_CONFIG directory holding `docker login` credentials for ``registry``.

    ``password`` overrides the registry's own, to make a wrong login.
    """
    assert registry.username is not None and registry.password is not None
    secret = registry.password if password is None else password
    token = base64.b64encode(f"{registry.username}:{secret}".encode()).decode()
    directory = tmp_path / "docker-config"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": token}}}))
    os.chmod(directory / "config.json", 0o600)
    return directory


# -- a release to publish ----------------------------------------------------------------

APP_COMMIT = "30458090588d14445f4b16b5b80e6db80dbffc33"
LIB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Two repos, every kind of output: a binary, a library archive, an image with two refs
# (one under the manifest's registry), and an image of another repo.
SMALL_MANIFEST = f"""\
schema: 1
release: v1.0.0
defaults:
  registry: registry.example.invalid:5000/team/
repos:
  app:
    url: https://robot:tok3n-value@example.invalid/app.git
    ref: v1.0.0
    commit: {APP_COMMIT}
    artifacts:
      app:
        type: binary
        command: make bin/app
        outputs: [bin/app]
      app/image:
        type: image
        tags: ["{{registry}}{{name}}:{{tag}}", "{{registry}}{{name}}:latest"]
  lib:
    url: https://example.invalid/lib.git
    ref: main
    commit: {LIB_COMMIT}
    artifacts:
      lib:
        type: library
      lib/image:
        type: image
        tags: ["lib/image:{{tag}}"]
"""


def small_manifest(tmp_path: Path, text: str = SMALL_MANIFEST) -> Manifest:
    """``text`` saved as tmp_path/manifest.yaml and loaded."""
    from orchestrator.manifest import load

    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    return load(path)


def make_release(
    release_dir: Path,
    manifest: Manifest,
    image_ids: Mapping[str, str],
    *,
    failed: Mapping[str, str] | None = None,
    workspace: Path | None = None,
    layers: Mapping[str, Sequence[str]] | None = None,
    signer: Any = None,
) -> dict[str, Any]:
    """Write dist/<release>/ for ``manifest`` as a build would: files, then SHA256SUMS,
    provenance.json and release.json (through report.write_release); returns the record
    as the JSON document written.

    Every binary writes ``bin/<output name>``, every library ``src/<repo>-<ref>.tar.gz``;
    image artifacts record ``image_ids[artifact]`` under all their refs. ``failed`` maps
    artifact -> error message for artifacts whose build failed; ``layers`` maps image
    artifacts to the layer diff ids recorded for them (``layers_of``).
    """
    from orchestrator.execute import Result
    from orchestrator.fileops import sha256_file
    from orchestrator.kinds.image import image_refs
    from orchestrator.outputs import ArtifactOutput, FileRecord, ImageRecord, Source
    from orchestrator.record import to_json
    from orchestrator.report import write_release

    failed = failed or {}
    results: dict[str, Result] = {}
    for name, artifact in manifest.artifacts.items():
        if name in failed:
            results[name] = Result(artifact=name, status="failed", error=failed[name], duration=0.5)
            continue
        outputs = getattr(artifact.settings, "outputs", ())
        paths = [f"bin/{Path(o).name}" for o in outputs] if artifact.type == "binary" else []
        if artifact.type == "library":
            repo = manifest.repos[artifact.repo]
            paths = [f"src/{repo.name}-{repo.ref}.tar.gz"]
        files = []
        for relative in paths:
            path = release_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name} {relative}\n")
            path.chmod(0o644)
            files.append(FileRecord(path=relative, sha256=sha256_file(path), size=path.stat().st_size, mode=0o644))
        images = ()
        if artifact.type == "image":
            images = (ImageRecord(id=image_ids[name], refs=image_refs(manifest, artifact),
                                  layers=tuple((layers or {}).get(name, ()))),)
        results[name] = Result(artifact=name, status="ok", output=ArtifactOutput(files=tuple(files), images=images),
                               duration=1.25)
    sources = {
        name: Source(repo=name, url=repo.url, ref=repo.ref, commit=repo.commit or "c" * 40, commit_time=1514764800,
                     path=release_dir / "unused" / name)
        for name, repo in manifest.repos.items()
    }
    release = write_release(manifest, sources, results, release_dir=release_dir,
                            workspace=workspace or release_dir.parent, started=1514764800.0, signer=signer)
    return to_json(release)


def layers_of(fake: Any, image_ids: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """artifact -> the layer diff ids the FakeDockerClient holds for its image."""
    return {name: tuple(fake.images.get(image_id).layers) for name, image_id in image_ids.items()}


def add_images(fake: Any, manifest: Manifest) -> dict[str, str]:
    """Put one image per image artifact into a FakeDockerClient, under all its refs; artifact -> id."""
    from docker.utils import parse_repository_tag

    from orchestrator.kinds.image import image_refs

    ids: dict[str, str] = {}
    for name, artifact in manifest.artifacts.items():
        if artifact.type == "image":
            first, *rest = image_refs(manifest, artifact)
            ids[name] = fake.add_image(first, labels={"org.opencontainers.image.title": name})
            for ref in rest:
                fake.api.tag(ids[name], *parse_repository_tag(ref))
    return ids
