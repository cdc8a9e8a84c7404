"""Parallel fetches: threads in one run, and whole processes, share mirrors safely."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.sources import FetchOptions, fetch
from tests.helpers.gitrepos import RepoSpec, Upstream

# Each process fetches the same repos into the same cache and the same checkouts.
SCRIPT = """
import json, sys
from pathlib import Path
from orchestrator.sources import FetchOptions, fetch
from tests.helpers.gitrepos import RepoSpec

url, cache, src, start = sys.argv[1:5]
refs = ["v1.0", "v1.1", "v2.0-nobranch", "main", "v0.9", "release-1"]
repos = [RepoSpec(name=f"r{i}", url=url, ref=ref) for i, ref in enumerate(refs)]
Path(start).touch()
while len(list(Path(start).parent.glob("started-*"))) < 2:
    pass  # both processes begin together: the race is the point
checkouts = fetch(repos, FetchOptions(cache_dir=Path(cache), checkout_dir=Path(src), jobs=3, backoff=0.0))
print(json.dumps({name: c.commit for name, c in checkouts.items()}))
"""


def test_two_processes_fetching_at_once_both_succeed(
    upstream_template: Upstream, options: FetchOptions, tmp_path: Path, project_root: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(project_root)}
    starts = tmp_path / "starts"
    starts.mkdir()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SCRIPT,
                upstream_template.url,
                str(options.cache_dir),
                str(options.checkout_dir),
                str(starts / f"started-{i}"),
            ],
            cwd=project_root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    assert results[0] == results[1]
    assert results[0]["r0"] == upstream_template.commits["c2"]
    assert results[0]["r3"] == upstream_template.commits["c4"]


def test_many_threads_on_one_mirror_all_get_their_own_ref(upstream_template: Upstream, options: FetchOptions) -> None:
    refs = {
        "v1.0": "c2",
        "v1.1": "r1",
        "v2.0-nobranch": "n1",
        "main": "c4",
        "v0.9": "c1",
        "release-1": "r2",
        "deadbeef": "r2",
        upstream_template.commits["c3"]: "c3",
    }
    repos = [RepoSpec(name=f"r{i}", url=upstream_template.url, ref=ref) for i, ref in enumerate(refs)]

    checkouts = fetch(repos, dataclasses.replace(options, jobs=8))

    assert [checkouts[repo.name].commit for repo in repos] == [upstream_template.commits[x] for x in refs.values()]
