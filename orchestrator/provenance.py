"""dist/<release>/provenance.json: an in-toto Statement v1 carrying SLSA Provenance v1.

Built from the release record alone, so that ``verify`` can rebuild the expected
statement and compare it field by field, and ``publish`` can rewrite it once registry
digests are known. Field names follow https://slsa.dev/provenance/v1 and the in-toto
Statement and ResourceDescriptor specs (https://github.com/in-toto/attestation/tree/main/spec/v1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator import record
from orchestrator.fileops import write_atomic
from orchestrator.record import Release
from orchestrator.redact import redact_url

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/release-orchestrator/buildtypes/manifest/v1"
# The build platform is "this tool, run by whoever ran it": nothing stronger is claimed.
BUILDER_ID = "https://github.com/release-orchestrator/builders/local/v1"
FILENAME = record.PROVENANCE


def statement(release: Release) -> dict[str, Any]:
    """The provenance statement of ``release``, keys in the same order on every run.

    Subjects: every published file (name = path relative to the release directory) and
    every image reference (digest = the registry digest once pushed, else the image id).
    """
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(release),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "release": release.release,
                    "manifest": {"path": release.manifest.path, "sha256": release.manifest.sha256},
                    "artifacts": list(release.artifacts),
                },
                "resolvedDependencies": dependencies(release),
            },
            "runDetails": {
                # The version that built the release, recorded with it: verifying with a
                # newer orchestrator must not make an untouched statement look forged.
                "builder": {"id": BUILDER_ID, "version": {"release-orchestrator": release.orchestrator}},
                "metadata": {"startedOn": release.started, "finishedOn": release.finished},
            },
        },
    }


def encode(release: Release) -> bytes:
    return (json.dumps(statement(release), indent=2) + "\n").encode()


def write_provenance(release: Release, release_dir: Path, *, sign: Callable[[bytes], bytes] | None = None) -> bool:
    """Write ``release_dir/provenance.json`` atomically, then its signature: the DSSE
    envelope ``sign`` makes of it (``signing.Signer.envelope``) into provenance.intoto.jsonl,
    or, without ``sign``, no envelope at all (one left from before would sign other bytes).
    Returns whether such an old envelope was removed (the release is now unsigned)."""
    statement = encode(release)
    write_atomic(release_dir / FILENAME, statement)
    envelope = release_dir / record.ENVELOPE
    if sign is not None:
        write_atomic(envelope, sign(statement))
        return False
    if envelope.exists() or envelope.is_symlink():
        envelope.unlink()
        return True
    return False


def subjects(release: Release) -> list[dict[str, Any]]:
    """The statement's subjects: files first, then image references, in record order.
    Failed artifacts are not subjects: their outputs are not part of the release."""
    found: dict[str, str] = {}
    built = release.built()
    for artifact in built.values():
        for file in artifact.files:
            found.setdefault(file.path, file.sha256)
    for artifact in built.values():
        for image in artifact.images:
            for ref in image.refs:
                landed = image.pushed.get(ref)
                found.setdefault(ref, _hex(landed.digest if landed else image.id))
            for ref, landed in image.pushed.items():  # refs pushed under another registry (publish --registry)
                found.setdefault(ref, _hex(landed.digest))
    return [{"name": name, "digest": {"sha256": digest}} for name, digest in found.items()]


def dependencies(release: Release) -> list[dict[str, Any]]:
    """One ResourceDescriptor per repository of the record, in record (manifest) order."""
    return [
        {"uri": f"git+{redact_url(repo.url)}@{repo.ref}", "digest": {"gitCommit": repo.commit}, "name": name}
        for name, repo in release.repos.items()
    ]


def differences(found: Any, expected: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, what differs) for every field of ``found`` that is not as ``expected``.

    Lists of named descriptors (subjects, dependencies) are matched by name, so one
    changed subject is named (``subject[bin/app].digest.sha256``) instead of shifting
    every index after it.
    """
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            yield where or "(statement)", f"is {_kind(found)}, expected an object"
            return
        for key, value in expected.items():
            if key not in found:
                yield _join(where, key), "missing"
            else:
                yield from differences(found[key], value, _join(where, key))
        for key in found:
            if key not in expected:
                yield _join(where, key), "not in the statement rebuilt from release.json"
    elif isinstance(expected, list):
        if not isinstance(found, list):
            yield where, f"is {_kind(found)}, expected an array"
        elif _named(expected) and _named(found):
            yield from _named_differences(found, expected, where)
        else:
            for index, value in enumerate(expected):
                if index >= len(found):
                    yield f"{where}[{index}]", "missing"
                else:
                    yield from differences(found[index], value, f"{where}[{index}]")
            for index in range(len(expected), len(found)):
                yield f"{where}[{index}]", "not in the statement rebuilt from release.json"
    elif type(found) is not type(expected) or found != expected:
        yield where, f"provenance.json says {_short(found)}, release.json says {_short(expected)}"


def _named_differences(found: list[Any], expected: list[Any], where: str) -> Iterator[tuple[str, str]]:
    by_name = {item["name"]: item for item in found}
    if len(by_name) != len(found):
        yield where, "names an entry twice"
    for item in expected:
        path = f"{where}[{item['name']}]"
        if item["name"] not in by_name:
            yield path, "in release.json but missing from provenance.json"
        else:
            yield from differences(by_name[item["name"]], item, path)
    wanted = {item["name"] for item in expected}
    for name in by_name:
        if name not in wanted:
            yield f"{where}[{name}]", "in provenance.json but not in release.json"
    if [item["name"] for item in found] != [item["name"] for item in expected] and set(by_name) == wanted:
        yield where, "entries out of order"


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in items)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _short(value)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _hex(digest: str) -> str:
    """``sha256:abc...`` -> ``abc...``: a DigestSet holds the bare hex under its algorithm."""
    return digest.removeprefix("sha256:")
