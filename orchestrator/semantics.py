"""Pass 2 of manifest validation: what a shape-valid manifest means.

Unique artifact names, references that exist, no cycles, and what each kind checks of
its own artifacts (``orchestrator.kinds``: image references that the Docker engine
will accept once rendered, files of ``dist/<release>/`` that one artifact alone may
write...). Everything here would otherwise fail only during or after the build, with
some work done and half of it published.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from orchestrator import graph, kinds
from orchestrator.document import Document, Path_
from orchestrator.errors import ManifestError
from orchestrator.gitinput import COMMIT
from orchestrator.model import Artifact, Manifest


class Meaning:
    """The checks of pass 2; problems are appended to ``errors``, located in ``doc``."""

    def __init__(self, doc: Document, manifest: Manifest) -> None:
        self.doc = doc
        self.manifest = manifest
        self.errors: list[ManifestError] = []
        self._claims: dict[str, tuple[str, str]] = {}  # what -> (artifact, how it was shown)

    def add(self, path: Path_, problem: str, hint: str | None = None, *, at_key: bool = False) -> None:
        self.errors.append(self.doc.error(path, problem, hint=hint, at_key=at_key))

    def claim(self, key: str, artifact: Artifact, detail: str) -> tuple[str, str] | None:
        """Record that ``artifact`` alone writes ``key`` (a file of dist/<release>/, an image
        reference); when another claim holds it, that claim: (its artifact, its detail)."""
        if key in self._claims:
            return self._claims[key]
        self._claims[key] = (artifact.name, detail)
        return None

    @staticmethod
    def artifact_path(artifact: Artifact) -> Path_:
        return ("repos", artifact.repo, "artifacts", artifact.name)

    def key_path(self, artifact: Artifact, key: str, index: int | None = None) -> Path_:
        """Where ``key`` (item ``index``) of ``artifact`` is written; the artifact when it is
        not written (a default applied)."""
        apath = self.artifact_path(artifact)
        if key not in self.raw(artifact):
            return apath
        return (*apath, key) if index is None else (*apath, key, index)

    def raw(self, artifact: Artifact) -> dict[str, Any]:
        """The artifact's mapping as written in the manifest."""
        node: Any = self.doc.root
        for part in self.artifact_path(artifact):
            node = node[part]
        return node  # type: ignore[no-any-return]

    def check(self) -> list[ManifestError]:
        self.unique_artifacts()
        names = self.manifest.artifacts  # a mapping: membership must not scan 20,000 names
        for artifact in self.manifest.artifacts.values():
            apath = self.artifact_path(artifact)
            for i, dep in enumerate(artifact.requires):
                self.reference(dep, (*apath, "requires", i), names, artifact.name)
            for dest, dep in artifact.stage:
                if self.reference(dep, (*apath, "stage", dest), names, artifact.name) and \
                        not kinds.get(names[dep].type).produces_files:
                    files = [name for name in kinds.names() if kinds.get(name).produces_files]
                    self.add((*apath, "stage", dest), f"cannot stage {dep!r}: {_a(names[dep].type)} has no files to "
                             f"copy", f"stage {_a(', '.join(files[:-1]))} or {files[-1]} artifact")
        for artifact in self.manifest.artifacts.values():
            kinds.get(artifact.type).check(self, artifact)
        for repo in self.manifest.repos.values():
            if COMMIT.fullmatch(repo.ref) and repo.commit and repo.commit != repo.ref:
                self.add(("repos", repo.name, "commit"), f"ref is commit {repo.ref} but commit pins {repo.commit}",
                         "make them equal or drop `commit:`")
        if not self.errors:
            cycle = graph.find_cycle({a.name: a.dependencies for a in self.manifest.artifacts.values()})
            if cycle:
                first = self.manifest.artifacts[cycle[0]]
                self.add(self.artifact_path(first), "dependency cycle: " + " -> ".join((*cycle, cycle[0])),
                         "remove one of these `requires`/`stage` entries", at_key=True)
        return self.errors

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


def _a(noun: str) -> str:
    """``an image``, ``a binary``."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
