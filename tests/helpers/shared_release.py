"""A small release for the shared-cache tests: real git repositories, one manifest, and a
way to run the console script on a workspace of its own.

Every command appends a line to ``runs.log`` (its path is in the manifest's env, so it
is part of every cache key, the same in every workspace): counting its lines says which
commands ran. Images are ``FROM scratch`` under the session's prefix.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import IMAGE_PREFIX
from tests.helpers.cli import run_cli


@dataclass(frozen=True)
class SharedRelease:
    root: Path
    manifest: Path
    runs: Path  # one line per command run: "<artifact>"

    def ran(self) -> list[str]:
        return self.runs.read_text().split() if self.runs.exists() else []

    def build(self, workspace: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``orchestrator build ARGS -m <manifest> -w <workspace>``, with the mirror cache shared."""
        workspace.mkdir(parents=True, exist_ok=True)
        return run_cli("build", *args, "--manifest", str(self.manifest), "--workspace", str(workspace),
                       "--progress", "plain", program="orchestrator", cwd=workspace, timeout=timeout,
                       env={"XDG_CACHE_HOME": str(self.root / "xdg"), **(env or {})})

    def popen(self, workspace: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        import os
        import sys

        workspace.mkdir(parents=True, exist_ok=True)
        command = [str(Path(sys.executable).parent / "orchestrator"), "build", *args, "--manifest",
                   str(self.manifest), "--workspace", str(workspace), "--progress", "plain"]
        return subprocess.Popen(command, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "XDG_CACHE_HOME": str(self.root / "xdg"), **env})


def record(workspace: Path, release: str = "v1") -> dict[str, Any]:
    return dict(json.loads((workspace / "dist" / release / "release.json").read_text()))


def _repo(path: Path, files: dict[str, str]) -> None:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def make_release(root: Path, *, images: bool = True, chain: bool = False, dep_timeout: str = "") -> SharedRelease:
    """Repositories and a manifest under ``root``.

    Default: ``lib`` (a library), ``tool`` (a binary), ``user`` (a binary staging tool's
    output), and with ``images`` two FROM scratch images ``a/image`` and ``b/image``.
    ``chain``: only ``a-tool`` and ``b-user`` (which stages a-tool), with ``dep_timeout``
    as a-tool's timeout.
    """
    runs = root / "runs.log"
    mark = 'echo "$ORCHESTRATOR_ARTIFACT" >> "$RUNS"'
    _repo(root / "repos" / "tools", {
        "build-tool.sh": f"{mark}\nmkdir -p out\nprintf 'tool %s\\n' \"$GIT_COMMIT\" > out/tool\n",
        "build-user.sh": f"{mark}\nmkdir -p out\ncat staged/tool > out/user\necho user >> out/user\n",
        "Dockerfile.a": "FROM scratch\nCOPY build-tool.sh /a\n",
        "Dockerfile.b": "FROM scratch\nCOPY build-user.sh /b\n",
    })
    url = f"file://{root / 'repos' / 'tools'}"
    if chain:
        timeout = f"\n        timeout: {dep_timeout}" if dep_timeout else ""
        artifacts = f"""      a-tool:
        type: binary
        command: sh build-tool.sh
        outputs: [out/tool]{timeout}
      b-user:
        type: binary
        command: sh build-user.sh
        outputs: [out/user]
        stage: {{staged/tool: a-tool}}
"""
    else:
        artifacts = """      tool:
        type: binary
        command: sh build-tool.sh
        outputs: [out/tool]
      user:
        type: binary
        command: sh build-user.sh
        outputs: [out/user]
        stage: {staged/tool: tool}
"""
        if images:
            artifacts += f"""      a/image:
        type: image
        dockerfile: Dockerfile.a
        command: sh -c 'echo "$ORCHESTRATOR_ARTIFACT" >> "$RUNS"'
        tags: ["{IMAGE_PREFIX}shared/a:{{tag}}"]
      b/image:
        type: image
        dockerfile: Dockerfile.b
        command: sh -c 'echo "$ORCHESTRATOR_ARTIFACT" >> "$RUNS"'
        tags: ["{IMAGE_PREFIX}shared/b:{{tag}}"]
"""
        artifacts += "      lib:\n        type: library\n"
    manifest = root / "manifest.yaml"
    manifest.write_text(f"""schema: 1
release: v1
defaults:
  network: none
  env: {{RUNS: {runs}}}
repos:
  tools:
    url: {url}
    ref: main
    artifacts:
{artifacts}""")
    return SharedRelease(root=root, manifest=manifest, runs=runs)
