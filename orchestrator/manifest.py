"""Load and validate a release manifest into frozen dataclasses.

This is the only module where raw YAML values live. Validation runs in two passes:
shape (types, required and unknown keys; every problem is collected and reported
with ``file:line:column`` and its key path), then meaning (unique names,
references, cycles, image references). Nothing is fetched or built before both pass.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
from pathlib import Path
from typing import Any

from orchestrator import kinds, schema
from orchestrator.document import Document, Path_, parse
from orchestrator.errors import ManifestError, ManifestErrors
from orchestrator.fileops import MAX_INPUT_BYTES, read_limited
from orchestrator.gitinput import COMMIT, shown
from orchestrator.imageref import IMAGE_REF_RE
from orchestrator.model import Artifact, Defaults, Manifest, Pairs, Repo
from orchestrator.schema import Field
from orchestrator.semantics import Meaning

# The dataclasses live in orchestrator.model; this module is where callers get them.
__all__ = ["IMAGE_REF_RE", "MAX_INPUT_BYTES", "Artifact", "Defaults", "Manifest", "Pairs", "Repo", "load", "loads"]


def load(path: Path | str) -> Manifest:
    """Read, validate and resolve the manifest at ``path``.

    Raises ManifestError/ManifestErrors (exit code 2) for every invalid input.
    """
    path = Path(path)
    try:
        data = read_limited(path)
    except FileNotFoundError:
        raise ManifestError(
            "manifest not found", file=str(path), hint="pass --manifest PATH or run from the project directory"
        ) from None
    except OSError as e:
        raise ManifestError(f"cannot read the manifest: {e.strerror or e}", file=str(path),
                            hint=f"give a regular file of at most {MAX_INPUT_BYTES // (1 << 20)} MiB") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ManifestError(f"not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})", file=str(path),
                            line=line, column=column, hint="save it as UTF-8") from e
    return loads(text, file=str(path), sha256=hashlib.sha256(data).hexdigest(), path=path)


def loads(text: str, *, file: str = "<manifest>", sha256: str | None = None, path: Path | None = None) -> Manifest:
    """Validate manifest ``text``; ``file`` is the name used in messages."""
    # Loading allocates a few small objects per YAML node and frees none of them:
    # the cyclic collector would rescan the growing heap over and over (quadratic
    # on 5,000-repo manifests, bench/). Nothing here makes reference cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        doc = parse(text, file)
        validator = _Validator(doc)
        validator.check_shape()
        validator.raise_if_any()
        manifest = _build(doc, sha256 or hashlib.sha256(text.encode()).hexdigest(), path or Path(file))
        validator.errors += Meaning(doc, manifest).check()
        validator.raise_if_any()
        return manifest
    finally:
        if collecting:
            gc.enable()


class _Validator:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.errors: list[ManifestError] = []

    def add(self, path: Path_, problem: str, hint: str | None = None, *, at_key: bool = False) -> None:
        self.errors.append(self.doc.error(path, problem, hint=hint, at_key=at_key))

    def raise_if_any(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda e: (e.line or 0, e.column or 0))
            raise ManifestErrors(self.errors)

    # -- pass 1: shape --------------------------------------------------------

    def check_shape(self) -> None:
        root = self.doc.root
        if not isinstance(root, dict):
            self.add((), f"the top level must be a mapping, got {schema._type_name(root)}",
                     "start with `schema: 1`, `release:` and `repos:`")
            return
        if not self.fields(root, (), schema.TOP_FIELDS, "the manifest"):
            return
        if "defaults" in root:
            self.fields(root["defaults"], ("defaults",), schema.DEFAULTS_FIELDS, "defaults")
        repos = root.get("repos")
        if not isinstance(repos, dict):
            return
        if not repos:
            self.add(("repos",), "no repositories declared", "add at least one repo under `repos:`")
        for name, repo in repos.items():
            rpath: Path_ = ("repos", name)
            if not schema.REPO_NAME_RE.fullmatch(name):
                self.add(rpath, f"{name!r} is not a valid repo name",
                         schema.REPO_NAME_HINT, at_key=True)
            if not self.fields(repo, rpath, schema.REPO_FIELDS, f"repo {name!r}"):
                continue
            artifacts = repo.get("artifacts")
            if isinstance(artifacts, dict):  # anything else is reported by fields() above
                for aname, artifact in artifacts.items():
                    self.artifact(aname, artifact, (*rpath, "artifacts", aname))

    def artifact(self, name: str, value: Any, path: Path_) -> None:
        if not schema.ARTIFACT_NAME_RE.fullmatch(name):
            self.add(path, f"{name!r} is not a valid artifact name",
                     schema.ARTIFACT_NAME_HINT, at_key=True)
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {schema._type_name(value)}")
            return
        kind: Any = value.get("type")
        if "type" not in value:
            self.add(path, "missing required key 'type'", f"add `type:` (one of: {', '.join(kinds.names())})")
            return
        if not isinstance(kind, str):
            problem, hint = schema.type_problem("an artifact type", kind)
            self.add((*path, "type"), problem, hint or self.quote_hint((*path, "type"), kind))
            return
        if kind not in kinds.names():
            self.add((*path, "type"), f"unknown artifact type {shown(kind)}", f"use one of: {', '.join(kinds.names())}")
            return
        self.fields(value, path, kinds.fields_of(kind), f"a {kind} artifact")

    def fields(self, value: Any, path: Path_, fields: dict[str, Field], what: str) -> bool:
        """Check a mapping against its field table; False when it is not a mapping."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {schema._type_name(value)}")
            return False
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(fields)
                self.add((*path, key), f"unknown key {key!r} in {what}", hint, at_key=True)
        for key, spec in fields.items():
            if spec.required and key not in value:
                self.add(path, f"missing required key {key!r}", f"add `{key}:` ({spec.description.rstrip('.')})")
            elif key in value:
                self.value(value[key], (*path, key), spec.kind)
        return True

    def value(self, value: Any, path: Path_, kind: str) -> None:
        check = schema.CHECKS[kind]
        problem = check(value)
        if problem:
            self.add(path, problem[0], problem[1] or self.quote_hint(path, value))
            return
        item = getattr(check, "item", None)  # lists and maps check each element for its own position
        key = getattr(check, "key", None)
        if item is None:
            return
        if isinstance(value, list):
            for i, element in enumerate(value):
                self.item(item, element, (*path, i))
        elif isinstance(value, dict):
            for k, element in value.items():
                key_problem = key(k) if key else None
                if key_problem:
                    self.add((*path, k), key_problem[0], key_problem[1], at_key=True)
                self.item(item, element, (*path, k))

    def item(self, check: schema.Check, value: Any, path: Path_) -> None:
        problem = check(value)
        if problem:
            self.add(path, problem[0], problem[1] or self.quote_hint(path, value))

    def quote_hint(self, path: Path_, value: Any) -> str | None:
        """For YAML 1.1 traps: show how the value was written and how to quote it."""
        raw = self.doc.raw.get(path)
        if raw is None or isinstance(value, str):
            return None
        return f'quote it: "{raw}"'


def _pairs(value: dict[str, str] | None) -> Pairs:
    return tuple((value or {}).items())


def _build(doc: Document, sha256: str, path: Path) -> Manifest:
    """Shape-valid raw values -> resolved dataclasses (defaults applied)."""
    root = doc.root
    raw_defaults = root.get("defaults") or {}
    defaults = Defaults(
        registry=raw_defaults.get("registry", ""),
        tag=raw_defaults.get("tag", "{release}"),
        env=_pairs(raw_defaults.get("env")),
        network=raw_defaults.get("network", "default"),
        timeout=_seconds(raw_defaults.get("timeout", schema.DEFAULT_TIMEOUT)),
    )
    repos: dict[str, Repo] = {}
    artifacts: dict[str, Artifact] = {}
    for rname, raw in root["repos"].items():
        ref = raw["ref"]
        commit = raw.get("commit") or (ref if COMMIT.fullmatch(ref) else None)
        repos[rname] = Repo(
            name=rname, url=raw["url"], ref=ref, commit=commit,
            description=raw.get("description", ""), artifacts=tuple(raw["artifacts"]),
        )
        for aname, a in raw["artifacts"].items():
            if aname in artifacts:
                continue  # reported by unique_artifacts()
            artifacts[aname] = _artifact(aname, rname, a, defaults)
    return Manifest(path=path, sha256=sha256, release=root["release"], defaults=defaults,
                    repos=repos, artifacts=artifacts, schema=root["schema"])


def _artifact(name: str, repo: str, a: dict[str, Any], defaults: Defaults) -> Artifact:
    return Artifact(
        name=name,
        repo=repo,
        type=a["type"],
        settings=kinds.get(a["type"]).settings(a, defaults),
        description=a.get("description", ""),
        requires=tuple(a.get("requires", ())),
        timeout=_seconds(a["timeout"]) if "timeout" in a else defaults.timeout,
    )


def _seconds(value: Any) -> float:
    seconds = schema.duration_seconds(value)
    assert seconds is not None  # validated by the shape pass
    return seconds
