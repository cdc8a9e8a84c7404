"""Pass 2 of manifest validation: what a shape-valid manifest means.

Unique artifact names, references that exist, no cycles, image references that the
Docker engine will accept once rendered, and no two artifacts writing the same file
of ``dist/<release>/``. Everything here would otherwise fail only during or after
the build, with some work done and half of it published.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from typing import Any

from orchestrator import graph, imageref, schema
from orchestrator.document import Document, Path_
from orchestrator.errors import ManifestError
from orchestrator.model import FILE_TYPES, Artifact, Manifest, Repo, archive_stem, image_refs

_GLOB = frozenset("*?[")


class Meaning:
    """The checks of pass 2; problems are appended to ``errors``, located in ``doc``."""

    def __init__(self, doc: Document, manifest: Manifest) -> None:
        self.doc = doc
        self.manifest = manifest
        self.errors: list[ManifestError] = []

    def add(self, path: Path_, problem: str, hint: str | None = None, *, at_key: bool = False) -> None:
        self.errors.append(self.doc.error(path, problem, hint=hint, at_key=at_key))

    def check(self) -> list[ManifestError]:
        self.unique_artifacts()
        names = self.manifest.artifacts  # a mapping: membership must not scan 20,000 names
        for artifact in self.manifest.artifacts.values():
            apath = _path(artifact)
            for i, dep in enumerate(artifact.requires):
                self.reference(dep, (*apath, "requires", i), names, artifact.name)
            for dest, dep in artifact.stage:
                if self.reference(dep, (*apath, "stage", dest), names, artifact.name) and \
                        names[dep].type not in FILE_TYPES:
                    self.add((*apath, "stage", dest), f"cannot stage {dep!r}: an image has no files to copy",
                             "stage a binary, python-package or library artifact")
        self.images()
        self.file_collisions()
        for repo in self.manifest.repos.values():
            if schema.COMMIT_RE.fullmatch(repo.ref) and repo.commit and repo.commit != repo.ref:
                self.add(("repos", repo.name, "commit"), f"ref is commit {repo.ref} but commit pins {repo.commit}",
                         "make them equal or drop `commit:`")
        if not self.errors:
            cycle = graph.find_cycle({a.name: a.dependencies for a in self.manifest.artifacts.values()})
            if cycle:
                first = self.manifest.artifacts[cycle[0]]
                self.add(_path(first), "dependency cycle: " + " -> ".join((*cycle, cycle[0])),
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

    # -- image references -------------------------------------------------------------

    def images(self) -> None:
        """Every rendered reference valid, and no reference built by two artifacts."""
        owners: dict[str, str] = {}
        for artifact in self.manifest.artifacts.values():
            if artifact.type != "image":
                continue
            repo = self.manifest.repos[artifact.repo]
            for i, ref in enumerate(image_refs(self.manifest, artifact, _commit_for_checks(repo))):
                if (why := imageref.problem(ref)) is not None:
                    self.bad_image(artifact, i, ref, why)
                elif owners.get(ref) == artifact.name:
                    continue  # two templates of one artifact may render alike ({tag} = {short_commit}): harmless
                elif ref in owners:
                    self.add(self.template_path(artifact, i),
                             f"image {ref!r} is also built by {owners[ref]!r}: each build would re-tag it",
                             "give each image artifact its own tags")
                else:
                    owners[ref] = artifact.name

    def bad_image(self, artifact: Artifact, index: int, ref: str, why: str) -> None:
        template = artifact.tags[index]
        used = [f for f in schema.TEMPLATE_FIELDS if "{" + f + "}" in template]
        if "tag" in used:
            used += [f for f in schema.TEMPLATE_FIELDS if "{" + f + "}" in self.manifest.defaults.tag]
        repo = self.manifest.repos[artifact.repo]
        values = {"release": self.manifest.release, "repo": repo.name, "ref": repo.ref,
                  "registry": self.manifest.defaults.registry, "name": artifact.name}
        shown = [f"{{{f}}} = {values[f]!r}" for f in dict.fromkeys(used) if values.get(f)]
        hint = "image names are lower case; tags are letters, digits, '_', '.', '-' (at most 128)"
        if shown:
            hint = f"rendered from {template!r} with " + ", ".join(shown) + "; " + hint
        where = self.template_path(artifact, index)
        self.add(where, f"{ref!r} is not a valid image reference: {why}", hint, at_key=where == _path(artifact))

    def template_path(self, artifact: Artifact, index: int) -> Path_:
        """Where the template that made reference ``index`` is written: the artifact's
        ``tags[index]``, else ``defaults.tag`` when the default template uses it."""
        apath = _path(artifact)
        if "tags" in _raw(self.doc, apath):
            return (*apath, "tags", index)
        if "tag" in (self.doc.root.get("defaults") or {}):
            return ("defaults", "tag")
        return apath

    # -- files in dist/<release>/ -------------------------------------------------------

    def file_collisions(self) -> None:
        """No two outputs may publish the same file of dist/<release>/.

        Literal names are compared directly; a glob is compared with the same glob of
        another artifact of the same repository (one checkout, so the same matches).
        Globs that may overlap otherwise can only be found at build time.
        """
        seen: dict[tuple[str, str], tuple[str, str]] = {}  # (folder, name) -> (artifact, output)
        for artifact in self.manifest.artifacts.values():
            if artifact.type == "library":
                continue
            folder = "bin" if artifact.type == "binary" else "python"
            for i, output in enumerate(artifact.outputs):
                base = output.rstrip("/").rsplit("/", 1)[-1]
                key = (folder, f"{artifact.repo}:{output}") if _GLOB & set(base) else (folder, base)
                if key not in seen:
                    seen[key] = (artifact.name, output)
                    continue
                owner, first = seen[key]
                whose = f"{owner!r}'s file" if owner != artifact.name else f"output {first!r} of the same artifact"
                what = f"output {base!r}" if key[1] == base else f"pattern {output!r} (same checkout)"
                self.add(self.output_path(artifact, i), f"{what} would overwrite {whose} in dist/<release>/{folder}/",
                         f"{'binary' if folder == 'bin' else 'python-package'} file names must be unique across "
                         "the release")
        archives: dict[str, str] = {}
        for artifact in self.manifest.artifacts.values():
            if artifact.type != "library":
                continue
            name = f"src/{archive_stem(self.manifest.repos[artifact.repo])}.tar.gz"
            if name in archives:
                self.add(_path(artifact), f"library {artifact.name!r} would write {archives[name]!r}'s archive "
                         f"dist/<release>/{name}", "declare one library artifact per repository", at_key=True)
            archives.setdefault(name, artifact.name)

    def output_path(self, artifact: Artifact, index: int) -> Path_:
        apath = _path(artifact)
        return (*apath, "outputs", index) if "outputs" in _raw(self.doc, apath) else apath


def _path(artifact: Artifact) -> Path_:
    return ("repos", artifact.repo, "artifacts", artifact.name)


def _raw(doc: Document, path: Path_) -> dict[str, Any]:
    node: Any = doc.root
    for part in path:
        node = node[part]
    return node  # type: ignore[no-any-return]


def _commit_for_checks(repo: Repo) -> str:
    """The pin, or a stand-in that differs per repo: the real commit is known only
    after fetching, and two unpinned repos must not look as if they shared one."""
    return repo.commit or hashlib.sha1(repo.name.encode()).hexdigest()
