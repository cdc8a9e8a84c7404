"""Scenario 5: fetching a pinned multi-repo workspace, the orchestrator against west and vcstool.

Eight generated repositories with real history (hundreds of commits, each release ref of
a shape real releases pin: annotated and lightweight tags, tags on no branch, a commit
pinned by id, a release branch) are served over file:// and over HTTPS by ``git
http-backend`` (tests/helpers/http_git.py), where every request starts a CGI process
and round trips cost. Each tool fetches all eight at their pins into a fresh workspace
(cold), then again (warm, a no-op); every checkout is checked to be at its pinned commit.
Tools take turns within each repeat, so load from elsewhere hits all of them alike.

- orchestrator: ``orchestrator fetch --all`` (fresh mirror cache for each cold run);
- west: ``west update --narrow -o=--depth=1`` after an untimed ``west init -l``;
- vcstool: ``vcs import --shallow``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fixtures
import peers
from harness import ORCHESTRATOR, REPO_ROOT, BenchError, clean_env, load_average, ratio, run_timed, stats, target

sys.path.insert(0, str(REPO_ROOT))
from tests.helpers.http_git import GitHttpServer, make_certificate  # noqa: E402  (the repo root, just added)

TOOLS = ("orchestrator", "west", "vcstool")
TRANSPORTS = ("file", "https")


def _setup(root: Path, quick: bool) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    env = clean_env(root / "home")
    repos = {}
    for i, (name, shape) in enumerate(fixtures.PEER_SHAPES):
        commits, files = (200 + 40 * i, 60 + 20 * i) if quick else (800 + 150 * i, 150 + 40 * i)
        repos[name] = fixtures.peer_repo(root / "remote" / f"{name}.git", shape, env, seed=i, commits=commits,
                                         files=files)
    return repos, env


def run(root: Path, *, repeats: int, quick: bool = False) -> dict[str, Any]:
    tools = peers.ensure_venv()
    repos, env = _setup(root, quick)
    expected = {name: r["commit"] for name, r in repos.items()}
    tls = make_certificate(root / "tls")
    results: dict[str, Any] = {}
    load_before = load_average()
    with GitHttpServer(root / "remote", tls=tls) as server:
        urls = {"file": {name: r["path"].as_uri() for name, r in repos.items()},
                "https": {name: server.url(f"{name}.git") for name in repos}}
        for transport in TRANSPORTS:
            tenv = {**env, "GIT_SSL_CAINFO": str(tls.cert)} if transport == "https" else dict(env)
            run = _Transport(root, transport, fixtures.peer_manifests(repos, urls[transport]), tools, tenv,
                             expected, server)
            order: list[Callable[[int], None]] = [run.ours, run.west, run.vcstool]
            for i in range(repeats):
                for step in order[i % 3:] + order[:i % 3]:  # each tool goes first in turn
                    step(i)
            results[transport] = _summary(run.walls, run.requests)
    return {
        "what": "8 generated repositories (history of 800-1,850 commits, 150-430 files; annotated and lightweight "
                "tags, tags on no branch, a commit pinned by id, a release branch) fetched at their pins into a "
                "fresh workspace (cold) and again (warm no-op), over file:// and over HTTPS (git http-backend as "
                "CGI behind Python's http.server on loopback)",
        "commands": {"orchestrator": "orchestrator fetch --all --quiet (fresh XDG_CACHE_HOME per cold run)",
                     "west": "west update --narrow -o=--depth=1 (after west init -l, untimed)",
                     "vcstool": "vcs import --shallow --input peers.repos WORKSPACE"},
        "versions": {"west": tools["west_version"], "vcstool": tools["vcs_version"]},
        "repositories": {name: {k: (str(v) if isinstance(v, Path) else v) for k, v in r.items() if k != "path"}
                         for name, r in repos.items()},
        "results": results,
        "load_average": {"before": load_before, "after": load_average()},
        "targets": [t for transport in TRANSPORTS for t in _targets(transport, results[transport])],
    }


class _Transport:
    """The three tools fetching over one transport: their timed runs, checked and recorded."""

    def __init__(self, root: Path, transport: str, docs: dict[str, Any], tools: dict[str, str],
                 env: dict[str, str], expected: dict[str, str], server: GitHttpServer) -> None:
        self.root, self.transport, self.tools, self.env = root, transport, tools, env
        self.expected, self.server = expected, server
        self.base = root / transport
        self.manifest = fixtures.write_yaml(self.base / "manifest.yaml", docs["orchestrator"])
        self.west_manifest = fixtures.write_yaml(self.base / "west-manifest" / "west.yml", docs["west"])
        self.vcs_file = fixtures.write_yaml(self.base / "peers.repos", docs["vcstool"])
        self.walls: dict[str, dict[str, list[float]]] = {t: {"cold": [], "warm": []} for t in TOOLS}
        self.requests: dict[str, dict[str, list[float]]] = {t: {"cold": [], "warm": []} for t in TOOLS}

    def measure(self, tool: str, i: int, argv: list[str], checkouts: Path, *, cwd: Path | None = None,
                extra: dict[str, str] | None = None) -> None:
        """One cold run into a fresh workspace, then one warm run of the same command."""
        names = list(self.expected)
        for phase in ("cold", "warm"):
            before = len(self.server.requests)
            log = self.root / "logs" / f"{self.transport}-{tool}-{phase}-{i}.log"
            timed = run_timed(argv, env={**self.env, **(extra or {})}, cwd=cwd, log=log, timeout=900)
            found = peers.heads(checkouts, names, self.env)
            if found != self.expected:
                wrong = {n: found[n][:12] or "missing" for n in names if found[n] != self.expected[n]}
                raise BenchError(f"{tool} ({self.transport}, {phase} {i}) left checkouts off their pins: "
                                 f"{wrong}\n{timed.output[-1200:]}")
            self.walls[tool][phase].append(timed.wall)
            self.requests[tool][phase].append(len(self.server.requests) - before)

    def ours(self, i: int) -> None:
        ws, cache = self.base / f"ours-{i}", self.base / f"ours-cache-{i}"
        argv = [str(ORCHESTRATOR), "fetch", "--all", "--quiet", "--manifest", str(self.manifest),
                "--workspace", str(ws)]
        self.measure("orchestrator", i, argv, ws / ".build" / "src", extra={"XDG_CACHE_HOME": str(cache)})
        shutil.rmtree(ws)
        shutil.rmtree(cache)

    def west(self, i: int) -> None:
        ws = self.base / f"west-{i}"
        shutil.copytree(self.west_manifest.parent, ws / "manifest")
        run_timed([self.tools["west"], "init", "-l", "manifest"], env=self.env, cwd=ws)
        self.measure("west", i, [self.tools["west"], "update", "--narrow", "-o=--depth=1"], ws, cwd=ws)
        shutil.rmtree(ws)

    def vcstool(self, i: int) -> None:
        ws = self.base / f"vcs-{i}"
        ws.mkdir(parents=True)
        self.measure("vcstool", i, [self.tools["vcs"], "import", "--shallow", "--input", str(self.vcs_file),
                                    str(ws)], ws)
        shutil.rmtree(ws)


def _summary(walls: dict[str, dict[str, list[float]]], requests: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {tool: {f"{phase}_s": stats(walls[tool][phase]) for phase in ("cold", "warm")}
                               for tool in TOOLS}
    for tool in TOOLS:
        summary[tool].update({f"{phase}_http_requests": stats(requests[tool][phase], 0) for phase in ("cold", "warm")})
    pairs = (("orchestrator", "west"), ("orchestrator", "vcstool"), ("west", "vcstool"))
    for phase in ("cold", "warm"):
        summary[f"{phase}_ratios"] = {
            f"{a}/{b}": {
                "of_medians": ratio(summary[a][f"{phase}_s"]["median"], summary[b][f"{phase}_s"]["median"]),
                "per_repeat": [ratio(x, y) for x, y in zip(walls[a][phase], walls[b][phase], strict=True)],
            }
            for a, b in pairs
        }
    return summary


def _targets(transport: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    cold = summary["cold_ratios"]["orchestrator/west"]["of_medians"]
    warm = summary["warm_ratios"]["orchestrator/west"]["of_medians"]
    west_cold, west_warm = summary["west"]["cold_s"]["median"], summary["west"]["warm_s"]["median"]
    return [
        target(f"cold fetch vs west ({transport})", "<= 0.7x west's time", cold, cold is not None and cold <= 0.7,
               f"orchestrator {summary['orchestrator']['cold_s']['median']} s, west {west_cold} s, vcstool "
               f"{summary['vcstool']['cold_s']['median']} s"),
        target(f"warm no-op fetch vs west ({transport})", "<= 0.5x west's time", warm,
               warm is not None and warm <= 0.5,
               f"orchestrator {summary['orchestrator']['warm_s']['median']} s, west {west_warm} s, vcstool "
               f"{summary['vcstool']['warm_s']['median']} s"),
    ]

