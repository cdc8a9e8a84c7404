"""The resolved manifest: frozen dataclasses with defaults applied, and what is
derived from them alone (rendered image references, per-artifact file names).

``orchestrator.manifest`` loads and validates a file into these; every other
module reads them (they are re-exported from ``orchestrator.manifest``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.schema import SCHEMA_VERSION, ArtifactType

DEFAULT_PYTHON_COMMAND = ("python3", "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", "dist", ".")
DEFAULT_PYTHON_OUTPUTS = ("dist/*.tar.gz", "dist/*.whl")
FILE_TYPES: frozenset[str] = frozenset({"binary", "python-package", "library"})

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    registry: str = ""
    tag: str = "{release}"
    env: Pairs = ()
    network: str = "default"
    timeout: float = 7200.0  # seconds (schema.DEFAULT_TIMEOUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """One declared artifact, with defaults applied."""

    name: str
    repo: str
    type: ArtifactType
    description: str = ""
    command: str | tuple[str, ...] | None = None
    builder: str | None = None
    outputs: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    stage: Pairs = ()  # (destination path in this checkout, artifact name)
    env: Pairs = ()  # defaults.env overlaid with the artifact's own env
    network: str = "default"
    dockerfile: str = "Dockerfile"
    context: str = "."
    buildargs: Pairs = ()
    target: str | None = None
    tags: tuple[str, ...] = ()  # templates; see image_refs()
    prefix: str | None = None
    timeout: float = 7200.0  # seconds: the build is stopped and fails after this long

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Everything that must be built first: ``requires`` then ``stage`` sources."""
        return tuple(dict.fromkeys((*self.requires, *(name for _, name in self.stage))))


@dataclass(frozen=True, slots=True, kw_only=True)
class Repo:
    name: str
    url: str
    ref: str
    commit: str | None = None
    description: str = ""
    artifacts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    path: Path
    sha256: str
    release: str
    defaults: Defaults
    repos: Mapping[str, Repo] = field(default_factory=dict)
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def repo_of(self, artifact: str) -> Repo:
        return self.repos[self.artifacts[artifact].repo]


def image_refs(manifest: Manifest, artifact: Artifact, commit: str | None = None) -> tuple[str, ...]:
    """The image references of an image artifact, its templates rendered.

    ``{commit}``/``{short_commit}`` need the resolved commit: without a pin (or the
    ``commit`` argument) a template that uses them is returned unrendered.
    """
    repo = manifest.repos[artifact.repo]
    commit = commit or repo.commit
    values = {
        "release": manifest.release,
        "repo": repo.name,
        "ref": repo.ref,
        "registry": manifest.defaults.registry,
        "name": artifact.name,
        "commit": commit or "{commit}",
        "short_commit": commit[:12] if commit else "{short_commit}",
    }
    values["tag"] = _render(manifest.defaults.tag, values)
    return tuple(_render(template, values) for template in artifact.tags)


def _render(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def file_stem(artifact: str) -> str:
    """The one file name (without suffix) that stands for ``artifact`` on disk: its log,
    its cache record. One-to-one: '/' becomes '+', which no artifact name contains
    (names are [a-z0-9._-] parts joined by '/'), so ``a/b`` and ``a_b`` never share a
    file. One flat name rather than nested directories, because nested ones would put
    the file of ``x`` (``x.log``) and the directory of ``x.log/y`` at the same path.
    """
    return artifact.replace("/", "+")


def archive_stem(repo: Repo) -> str:
    """``<repo>-<ref>``: the file name (before .tar.gz) of a library artifact's source
    archive in dist/<release>/src/; a ref that is the commit itself is shortened.
    Must agree with ``builders.library.archive_name``
    (tests/reliability/test_inputs_collisions.py)."""
    return f"{repo.name}-{repo.ref if repo.ref != repo.commit else repo.ref[:12]}"
