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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import graph, schema
from orchestrator.document import Document, Path_, parse
from orchestrator.errors import ManifestError, ManifestErrors
from orchestrator.schema import ArtifactType, Field

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
    schema: int = schema.SCHEMA_VERSION

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


# Docker's reference grammar (distribution/reference), enough to refuse what
# `docker build -t` would refuse.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)"
IMAGE_REF_RE = re.compile(rf"^{_DOMAIN}?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?$")


def load(path: Path | str) -> Manifest:
    """Read, validate and resolve the manifest at ``path``.

    Raises ManifestError/ManifestErrors (exit code 2) for every invalid input.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            "manifest not found", file=str(path), hint="pass --manifest PATH or run from the project directory"
        ) from None
    except OSError as e:
        raise ManifestError(f"cannot read the manifest: {e.strerror}", file=str(path)) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"not UTF-8 text (byte {e.start})", file=str(path), hint="save it as UTF-8") from e
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
        validator.check_meaning(manifest)
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
            if not schema.REPO_NAME_RE.match(name):
                self.add(rpath, f"{name!r} is not a valid repo name",
                         "lower-case letters, digits, '.', '_', '-'; starting with a letter or digit", at_key=True)
            if not self.fields(repo, rpath, schema.REPO_FIELDS, f"repo {name!r}"):
                continue
            for aname, artifact in (repo.get("artifacts") or {}).items():
                self.artifact(aname, artifact, (*rpath, "artifacts", aname))

    def artifact(self, name: str, value: Any, path: Path_) -> None:
        if not schema.ARTIFACT_NAME_RE.match(name):
            self.add(path, f"{name!r} is not a valid artifact name",
                     "lower-case letters, digits, '.', '_', '-', with '/' between parts (calico/node)", at_key=True)
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {schema._type_name(value)}")
            return
        kind: Any = value.get("type")
        if "type" not in value:
            kinds = ", ".join(schema.ARTIFACT_TYPES)
            self.add(path, "missing required key 'type'", f"add `type:` (one of: {kinds})")
            return
        problem = schema.check_type(kind)
        if problem:
            self.add((*path, "type"), problem[0], problem[1])
            return
        self.fields(value, path, schema.ARTIFACT_FIELDS[kind], f"a {kind} artifact")

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

    # -- pass 2: meaning ------------------------------------------------------

    def check_meaning(self, manifest: Manifest) -> None:
        self.unique_artifacts()
        names = manifest.artifacts  # a mapping: membership must not scan 20,000 names
        for artifact in manifest.artifacts.values():
            apath: Path_ = ("repos", artifact.repo, "artifacts", artifact.name)
            for i, dep in enumerate(artifact.requires):
                self.reference(dep, (*apath, "requires", i), names, artifact.name)
            for dest, dep in artifact.stage:
                if self.reference(dep, (*apath, "stage", dest), names, artifact.name) and \
                        manifest.artifacts[dep].type not in FILE_TYPES:
                    self.add((*apath, "stage", dest), f"cannot stage {dep!r}: an image has no files to copy",
                             "stage a binary, python-package or library artifact")
            if artifact.type == "image":
                for i, ref in enumerate(image_refs(manifest, artifact, "0" * 40)):
                    if not IMAGE_REF_RE.match(ref):
                        self.add((*apath, "tags", i) if "tags" in self.raw_artifact(apath) else apath,
                                 f"{ref!r} is not a valid image reference",
                                 "image names are lower-case; tags are letters, digits, '_', '.', '-' (max 128)")
        self.binary_collisions(manifest)
        repo_commit = {r.name: r for r in manifest.repos.values()}
        for repo in repo_commit.values():
            if schema.COMMIT_RE.match(repo.ref) and repo.commit and repo.commit != repo.ref:
                self.add(("repos", repo.name, "commit"), f"ref is commit {repo.ref} but commit pins {repo.commit}",
                         "make them equal or drop `commit:`")
        if not self.errors:
            cycle = graph.find_cycle({a.name: a.dependencies for a in manifest.artifacts.values()})
            if cycle:
                first = manifest.artifacts[cycle[0]]
                self.add(("repos", first.repo, "artifacts", first.name),
                         "dependency cycle: " + " -> ".join((*cycle, cycle[0])),
                         "remove one of these `requires`/`stage` entries", at_key=True)

    def raw_artifact(self, path: Path_) -> dict[str, Any]:
        node: Any = self.doc.root
        for part in path:
            node = node[part]
        return node  # type: ignore[no-any-return]

    def unique_artifacts(self) -> None:
        seen: dict[str, str] = {}
        for rname, repo in self.doc.root["repos"].items():
            for aname in repo["artifacts"]:
                if aname in seen:
                    first = self.doc.key_pos(("repos", seen[aname], "artifacts", aname))
                    self.add(("repos", rname, "artifacts", aname),
                             f"artifact name {aname!r} is already used by repo {seen[aname]!r}"
                             + (f" (line {first.line})" if first else ""),
                             "artifact names are unique across the manifest; rename one", at_key=True)
                else:
                    seen[aname] = rname

    def reference(self, dep: str, path: Path_, names: Mapping[str, Artifact], owner: str) -> bool:
        if dep in names:
            return True
        close = difflib.get_close_matches(dep, list(names), n=1, cutoff=0.6)
        self.add(path, f"{owner!r} depends on unknown artifact {dep!r}",
                 f"did you mean {close[0]!r}?" if close else "known artifacts: " + ", ".join(names))
        return False

    def binary_collisions(self, manifest: Manifest) -> None:
        seen: dict[str, str] = {}
        for artifact in manifest.artifacts.values():
            if artifact.type != "binary":
                continue
            for i, output in enumerate(artifact.outputs):
                base = output.rsplit("/", 1)[-1]
                if any(c in base for c in "*?["):
                    continue
                if base in seen and seen[base] != artifact.name:
                    self.add(("repos", artifact.repo, "artifacts", artifact.name, "outputs", i),
                             f"output {base!r} would overwrite {seen[base]!r}'s file in dist/<release>/bin/",
                             "binary file names must be unique across the release")
                seen.setdefault(base, artifact.name)


def _pairs(value: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
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
    )
    repos: dict[str, Repo] = {}
    artifacts: dict[str, Artifact] = {}
    for rname, raw in root["repos"].items():
        ref = raw["ref"]
        commit = raw.get("commit") or (ref if schema.COMMIT_RE.match(ref) else None)
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
    kind: ArtifactType = a["type"]
    command = a.get("command")
    outputs = a.get("outputs")
    if kind == "python-package":
        command = command if command is not None else DEFAULT_PYTHON_COMMAND
        outputs = outputs or DEFAULT_PYTHON_OUTPUTS
    return Artifact(
        name=name,
        repo=repo,
        type=kind,
        description=a.get("description", ""),
        command=tuple(command) if isinstance(command, (list, tuple)) else command,
        builder=a.get("builder"),
        outputs=tuple(outputs or ()),
        requires=tuple(a.get("requires", ())),
        stage=_pairs(a.get("stage")),
        env=tuple({**dict(defaults.env), **(a.get("env") or {})}.items()) if kind != "library" else (),
        network=a.get("network", defaults.network),
        dockerfile=a.get("dockerfile", "Dockerfile"),
        context=a.get("context", "."),
        buildargs=_pairs(a.get("buildargs")),
        target=a.get("target"),
        tags=tuple(a.get("tags", ("{registry}{name}:{tag}",))) if kind == "image" else (),
        prefix=a.get("prefix"),
    )
