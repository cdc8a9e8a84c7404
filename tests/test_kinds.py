"""The kinds registry: every kind is one module; a new one needs no other module.

A throw-away kind, ``docs`` (a tarball of documentation files), is registered here and
goes end to end through validation, ``manifest --json``, the dry-run plan, a build, the
release record and verify's conformance checks, with no change anywhere else.
"""

from __future__ import annotations

import ast
import io
import json
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import kinds
from orchestrator.builders.common import Job
from orchestrator.confined import write_file
from orchestrator.conformance import record_checks
from orchestrator.describe import manifest_json, plan_text
from orchestrator.errors import BuildError, ManifestErrors
from orchestrator.execute import Options, execute
from orchestrator.manifest import loads
from orchestrator.model import Artifact, Defaults, Manifest, Pairs
from orchestrator.outputs import ArtifactOutput, FileRecord, Source
from orchestrator.plan import make_plan
from orchestrator.record import ArtifactEntry
from orchestrator.report import write_release
from orchestrator.schema import Field
from orchestrator.semantics import Meaning

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True, kw_only=True)
class DocsSettings:
    paths: tuple[str, ...]
    stage: Pairs = ()


class Docs:
    """A tarball of documentation files: dist/<release>/docs/<artifact>.tar."""

    name = "docs"
    summary = "a tarball of documentation files"
    fields: Mapping[str, Field] = {"paths": Field(kind="outputs", required=True, description="Files to pack.")}
    produces_files = True

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> DocsSettings:
        return DocsSettings(paths=tuple(raw["paths"]))

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        if owner := meaning.claim(self.tarball(artifact), artifact, "docs"):
            meaning.add(meaning.artifact_path(artifact), f"docs tarball already written by {owner[0]!r}")

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        return [f"pack {', '.join(self.paths(artifact))} -> dist/{manifest.release}/{self.tarball(artifact)}"]

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        return {"paths": list(self.paths(artifact))}

    def needs_docker(self, artifact: Artifact) -> bool:
        return False

    def builder_image(self, artifact: Artifact) -> str | None:
        return None

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        return None

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {}

    def build(self, job: Job) -> ArtifactOutput:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            for path in self.paths(job.artifact):
                if not (job.source.path / path).is_file():
                    raise BuildError(f"{job.artifact.name}: {path} is not in the checkout")
                tar.add(job.source.path / path, arcname=path)
        relative = self.tarball(job.artifact)
        job.release_dir.mkdir(parents=True, exist_ok=True)
        written = write_file(job.release_dir, relative, iter([data.getvalue()]), mode=0o644)
        return ArtifactOutput(files=(FileRecord(path=relative, sha256=written.sha256, size=written.size,
                                                mode=written.mode),))

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        if [f.path for f in entry.files] != [self.tarball(artifact)]:
            yield f"a docs tarball is exactly {self.tarball(artifact)}"

    @staticmethod
    def paths(artifact: Artifact) -> tuple[str, ...]:
        assert isinstance(artifact.settings, DocsSettings)
        return artifact.settings.paths

    @staticmethod
    def tarball(artifact: Artifact) -> str:
        return f"docs/{artifact.name.replace('/', '+')}.tar"


@pytest.fixture
def docs() -> Iterator[Docs]:
    kind = Docs()
    kinds.register(kind)
    try:
        yield kind
    finally:
        kinds.unregister(kind.name)


MANIFEST = """\
schema: 1
release: v1
repos:
  guide:
    url: file:///up/guide
    ref: v1
    commit: "1111111111111111111111111111111111111111"
    artifacts:
      guide/html:
        type: docs
        paths: [index.html, style.css]
      guide/bin:
        type: binary
        command: "true"
        outputs: [index.html]
        requires: [guide/html]
"""


def test_a_registered_kind_validates_describes_plans_builds_and_is_recorded(docs: Docs, tmp_path: Path) -> None:
    manifest = loads(MANIFEST)
    assert manifest.artifacts["guide/html"].settings == DocsSettings(paths=("index.html", "style.css"))
    described = manifest_json(manifest)["artifacts"]["guide/html"]
    assert described["type"] == "docs" and described["paths"] == ["index.html", "style.css"]
    plan = make_plan(manifest, ["guide/html"])
    assert "pack index.html, style.css -> dist/v1/docs/guide+html.tar" in plan_text(plan)

    checkout = tmp_path / "src" / "guide"
    checkout.mkdir(parents=True)
    (checkout / "index.html").write_text("<h1>guide</h1>\n")
    (checkout / "style.css").write_text("h1 {}\n")
    source = Source(repo="guide", url="file:///up/guide", ref="v1", commit="1" * 40, commit_time=0, path=checkout)
    release_dir = tmp_path / "dist" / "v1"
    results = execute(plan, manifest, {"guide": source}, Options(log_dir=tmp_path / "logs", release_dir=release_dir))
    assert results["guide/html"].status == "ok", results["guide/html"].error
    with tarfile.open(release_dir / "docs/guide+html.tar") as tar:
        assert tar.getnames() == ["index.html", "style.css"]

    written = write_release(manifest, {"guide": source}, results, release_dir=release_dir, workspace=tmp_path,
                            started=0.0)
    assert written.artifacts["guide/html"].type == "docs" and written.status == "ok"
    assert all(check.ok is not False for check in record_checks(manifest, written))


def test_its_keys_are_checked_and_in_the_json_schema(docs: Docs) -> None:
    with pytest.raises(ManifestErrors) as caught:
        loads(MANIFEST.replace("paths: [index.html, style.css]", "pages: [index.html]"))
    text = str(caught.value)
    assert "unknown key 'pages' in a docs artifact; did you mean 'paths'?" in text
    assert "missing required key 'paths'" in text
    from orchestrator.schemafile import json_schema

    schema = json_schema()
    assert "docs" in schema["$defs"]["artifact"]["properties"]["type"]["enum"]
    assert schema["$defs"]["docs"]["required"] == ["type", "paths"]


def test_an_unknown_type_is_refused_and_never_falls_through_to_another_kind() -> None:
    with pytest.raises(ManifestErrors) as caught:
        loads(MANIFEST.replace("type: docs", "type: tarball"))
    assert "unknown artifact type 'tarball'; use one of: binary, image, python-package, library" in str(caught.value)
    with pytest.raises(KeyError):
        kinds.get("tarball")


def test_a_kind_name_appears_only_in_its_own_module() -> None:
    """No module but the kind's own (and the demo's data) spells a built-in type name."""
    names = {"binary", "image", "python-package", "library"}
    found = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")) + sorted((ROOT / "orchestrator_cli").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("orchestrator/kinds/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert found == []


def test_the_json_schema_lists_every_registered_kind_and_nothing_else() -> None:
    schema = json.loads((ROOT / "manifest.schema.json").read_text())
    assert schema["$defs"]["artifact"]["properties"]["type"]["enum"] == list(kinds.names())


def test_a_bug_in_a_build_step_leaves_its_traceback_in_the_artifacts_log(docs: Docs, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(job: Job) -> ArtifactOutput:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(docs, "build", broken)
    manifest = loads(MANIFEST)
    plan = make_plan(manifest, ["guide/html"])
    source = Source(repo="guide", url="file:///up/guide", ref="v1", commit="1" * 40, commit_time=0, path=tmp_path)
    results = execute(plan, manifest, {"guide": source}, Options(log_dir=tmp_path / "logs", release_dir=tmp_path))
    result = results["guide/html"]
    assert result.status == "failed" and "unexpected ZeroDivisionError: a bug" in (result.error or "")
    assert result.log is not None
    log = result.log.read_text()
    assert "Traceback (most recent call last)" in log and 'raise ZeroDivisionError("a bug")' in log
