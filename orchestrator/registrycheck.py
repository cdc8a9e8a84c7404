"""Does each registry still hold what the release pushed? (``verify --registry``)

Every reference release.json records as pushed is looked up in its registry
(``registryapi``) and compared with the digest recorded when it landed: a tag deleted
by hand, or pushed over with another image, is named, one line each. A registry that
cannot be asked is one line too (its references are not checked); one not asked at all
(no ``--registry``) is listed as not checked, never as passed.
"""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.imageref import registry_of
from orchestrator.integrity import Check
from orchestrator.record import Release
from orchestrator.registryapi import ManifestDigests, RegistryUnreachable


def pushed_refs(release: Release) -> dict[str, tuple[str, str]]:
    """Every pushed reference of the release's built artifacts: ref -> (artifact, recorded digest)."""
    return {ref: (name, landed.digest) for name, artifact in release.built().items()
            for image in artifact.images for ref, landed in image.pushed.items()}


def registry_checks(release: Release, client: ManifestDigests | None) -> Iterator[Check]:
    by_registry: dict[str, list[tuple[str, str, str]]] = {}
    for ref, (artifact, digest) in pushed_refs(release).items():
        by_registry.setdefault(registry_of(ref), []).append((ref, artifact, digest))
    for registry, refs in by_registry.items():
        if client is None:
            yield Check(what=f"registry {registry}", ok=None,
                        detail=f"not asked: {len(refs)} pushed reference(s) recorded; pass --registry to ask it")
            continue
        yield from _ask(registry, refs, client)


def _ask(registry: str, refs: list[tuple[str, str, str]], client: ManifestDigests) -> Iterator[Check]:
    for index, (ref, artifact, recorded) in enumerate(refs):
        what = f"registry {ref} ({artifact})"
        try:
            found = client.manifest_digest(ref)
        except RegistryUnreachable as e:
            yield Check(what=f"registry {registry}", ok=None,
                        detail=f"cannot be asked: {e.why}; {len(refs) - index} pushed reference(s) not checked")
            return
        if found is None:
            yield Check(what=what, ok=False, detail=f"not in the registry: the tag was deleted (release.json "
                                                    f"records {recorded})")
        elif found != recorded:
            yield Check(what=what, ok=False, detail=f"now names {found}, release.json records {recorded} "
                                                    "(pushed over since)")
        else:
            yield Check(what=what, ok=True, detail=f"holds {found} as recorded")
