"""Artifact kinds: one module per kind, and one table from type name to kind.

A kind owns everything that differs between a binary, an image, a Python package and a
library: its manifest keys (with their checks and JSON Schema), its typed settings with
defaults applied, its meaning checks, what the plan says it will do, its part of
``manifest --json``, whether it needs Docker, whether it publishes files (and so can be
staged), what else goes into its cache key, how it builds, and which outputs a record
of it must hold. Every other module asks this table (``get``), so a type that is not
registered is refused where it is first met and never falls through to another kind.

Adding a kind is one module that implements ``Kind`` plus one line in ``BUILT_IN`` (or,
from outside this package, one ``register`` call).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults, KindSettings, Manifest
    from orchestrator.outputs import ArtifactOutput
    from orchestrator.record import ArtifactEntry
    from orchestrator.semantics import Meaning

# The modules of the kinds that ship with the orchestrator, in the order they are listed.
BUILT_IN = ("binary", "image", "python_package", "library")


class Kind(Protocol):
    """What one artifact kind knows; ``name`` is its ``type:`` in the manifest."""

    name: str
    summary: str  # one line: what such an artifact is
    fields: Mapping[str, Field]  # its own manifest keys (beyond COMMON_FIELDS)
    produces_files: bool  # publishes files into dist/<release>/, so other artifacts can stage it

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> KindSettings:
        """Its typed settings from a shape-valid manifest mapping, defaults applied."""
        ...

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        """Meaning checks of pass 2 (``meaning.add`` a problem, ``meaning.claim`` a path of
        dist/<release>/ or a name it alone may write)."""
        ...

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        """What building it will do, one line each (after checking the repo out)."""
        ...

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        """Its own keys in ``manifest --json``."""
        ...

    def needs_docker(self, artifact: Artifact) -> bool: ...

    def builder_image(self, artifact: Artifact) -> str | None:
        """The image its command runs in, if any (its id goes into the cache key)."""
        ...

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        """The command it runs on the host, if any (the host's fingerprint goes into the
        cache key: orchestrator.hostprint)."""
        ...

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        """What its result depends on beyond its settings (e.g. rendered image references)."""
        ...

    def build(self, job: Job) -> ArtifactOutput:
        """Build it; BuildError (with the log's tail) when that fails."""
        ...

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        """What is wrong with the outputs a record says it built at ``commit``."""
        ...


COMMON_FIELDS: dict[str, Field] = {
    "type": Field(kind="nonempty", required=True, description="The artifact's kind."),
    "description": Field(kind="string", description="What the artifact is (the documented text)."),
    "requires": Field(kind="names", description="Artifacts that must be built before this one.", default=[]),
    "timeout": Field(kind="duration", description="Stop the build and fail it after this long (seconds, or "
                     "90s, 30m, 2h); default defaults.timeout."),
}

_TABLE: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    """Add ``kind`` to the table under ``kind.name``; a name may be registered once."""
    _load_built_in()
    if kind.name in _TABLE:
        raise ValueError(f"artifact kind {kind.name!r} is registered already")
    _TABLE[kind.name] = kind


def unregister(name: str) -> None:
    """Remove a kind (tests register throw-away kinds)."""
    _TABLE.pop(name, None)


def get(name: str) -> Kind:
    """The kind registered as ``name``; KeyError for any other (validation refuses those first)."""
    _load_built_in()
    return _TABLE[name]


def names() -> tuple[str, ...]:
    """Every registered type name, in registration order."""
    _load_built_in()
    return tuple(_TABLE)


def fields_of(name: str) -> dict[str, Field]:
    """Every manifest key an artifact of type ``name`` may have."""
    kind = Field(kind="nonempty", required=True, description=" | ".join(names()))
    return {**COMMON_FIELDS, "type": kind, **get(name).fields}


_loaded = False


def _load_built_in() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILT_IN:
            kind: Kind = importlib.import_module(f"orchestrator.kinds.{module}").KIND
            _TABLE.setdefault(kind.name, kind)
