"""The resolved manifest: frozen dataclasses with defaults applied, and what is
derived from them alone (rendered image references, per-artifact file names).

``orchestrator.manifest`` loads and validates a file into these; every other
module reads them (they are re-exported from ``orchestrator.manifest``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from orchestrator.schema import SCHEMA_VERSION

Pairs = tuple[tuple[str, str], ...]


class KindSettings(Protocol):
    """An artifact's own settings, typed by its kind (``orchestrator.kinds``). Every kind's
    settings say what they stage into the checkout first (nothing, for most)."""

    @property
    def stage(self) -> Pairs: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    registry: str = ""
    tag: str = "{release}"
    env: Pairs = ()
    network: str = "default"
    timeout: float = 7200.0  # seconds (schema.DEFAULT_TIMEOUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """One declared artifact, with defaults applied: what every kind has, and the
    settings of its own kind (``settings``, typed by ``orchestrator.kinds.get(type)``)."""

    name: str
    repo: str
    type: str  # a registered kind's name
    settings: KindSettings
    description: str = ""
    requires: tuple[str, ...] = ()
    timeout: float = 7200.0  # seconds: the build is stopped and fails after this long

    @property
    def stage(self) -> Pairs:
        """(destination path in this checkout, artifact name) to copy in first."""
        return self.settings.stage

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


def command_text(command: str | tuple[str, ...] | None) -> str:
    """A manifest command as one would type it: a string as is, argv shell-quoted."""
    if command is None:
        return ""
    return command if isinstance(command, str) else shlex.join(command)


_FIELD = re.compile(r"\{([a-z_]+)\}")


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{field}`` replaced from ``values`` (unknown ones kept)."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def file_stem(artifact: str) -> str:
    """The one file name (without suffix) that stands for ``artifact`` on disk: its log,
    its cache record. One-to-one: '/' becomes '+', which no artifact name contains
    (names are [a-z0-9._-] parts joined by '/'), so ``a/b`` and ``a_b`` never share a
    file. One flat name rather than nested directories, because nested ones would put
    the file of ``x`` (``x.log``) and the directory of ``x.log/y`` at the same path.
    """
    return artifact.replace("/", "+")
