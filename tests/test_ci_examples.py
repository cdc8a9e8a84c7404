"""The CI examples (examples/ci/) hang together: N shards, then an assemble that needs them,
then a publish that needs it, and every orchestrator flag they use exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.cli import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "ci"


def commands(document: Any) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for value in document.values():
            found += commands(value)
    elif isinstance(document, list):
        for value in document:
            found += commands(value)
    elif isinstance(document, str):
        found += [line.strip() for line in document.splitlines() if line.strip().startswith("orchestrator ")]
    return found


def test_the_github_workflow_runs_a_matrix_of_shards_then_assembles_then_publishes() -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    jobs = workflow["jobs"]
    shards = jobs["shard"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(workflow["env"]["SHARDS"]) + 1))
    assert jobs["assemble"]["needs"] == "shard" and jobs["publish"]["needs"] == "assemble"
    runs = " ".join(commands(jobs))
    assert "--shard ${{ matrix.shard }}/${{ env.SHARDS }}" in runs and "--assemble" in runs
    assert "publish --all" in runs and "--cache-mode read" in runs


def test_the_gitlab_pipeline_runs_parallel_shards_then_assembles_then_publishes() -> None:
    pipeline = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    assert pipeline["stages"] == ["build", "assemble", "publish"]
    assert pipeline["shard"]["parallel"] >= 2
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in " ".join(pipeline["shard"]["script"])
    assert pipeline["variables"]["ORCHESTRATOR_CACHE"]


def test_every_flag_the_examples_use_is_a_flag_of_its_task() -> None:
    used: dict[str, set[str]] = {}
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        for command in commands(yaml.safe_load((EXAMPLES / name).read_text())):
            task = command.split()[1]
            used.setdefault(task, set()).update(re.findall(r"(?<!\S)(--[a-z-]+)", command))
    for task, flags in used.items():
        help_text = run_cli("--help", task, program="orchestrator", cwd=ROOT).stdout
        for flag in flags:
            assert flag in help_text, f"{task} has no {flag}"
