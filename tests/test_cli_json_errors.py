"""With --json, stdout is always one JSON document: a task that fails before its result
says so as ``{"error": ...}`` (the message still goes to stderr), with the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.sandbox import create_demo
from tests.helpers.cli import run_cli


def one_document(stdout: str) -> dict[str, object]:
    data = json.loads(stdout)  # exactly one document: json.loads refuses trailing text
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("task", ["build", "verify", "status", "manifest", "fetch"])
def test_a_manifest_that_does_not_exist_is_a_json_error_with_exit_2(tmp_path: Path, task: str) -> None:
    args = [task, "--json", "--manifest", str(tmp_path / "nope.yaml")]
    if task in ("build", "fetch"):
        args.append("--all")
    result = run_cli(*args, program="orchestrator", cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    error = one_document(result.stdout)["error"]
    assert isinstance(error, dict) and error["exit_code"] == 2
    assert "nope.yaml" in str(error["message"])
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_a_refused_publish_lists_its_problems_in_json(tmp_path: Path) -> None:
    manifest = create_demo(tmp_path / "demo")
    # No build: the release is not there, and publish refuses with every problem named.
    result = run_cli("publish", "--all", "--json", "--manifest", str(manifest), "--workspace", str(tmp_path),
                     program="orchestrator", cwd=tmp_path, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})

    assert result.returncode != 0
    error = one_document(result.stdout)["error"]
    assert isinstance(error, dict) and error["exit_code"] == result.returncode
    assert str(error["message"]).splitlines()[0] in result.stderr


def test_an_unknown_name_is_a_json_error(tmp_path: Path) -> None:
    manifest = create_demo(tmp_path / "demo")
    result = run_cli("build", "no-such-thing", "--json", "--dry-run", "--manifest", str(manifest),
                     program="orchestrator", cwd=tmp_path)

    assert result.returncode == 2
    error = one_document(result.stdout)["error"]
    assert isinstance(error, dict) and "no-such-thing" in str(error["message"])


def test_a_successful_json_result_is_not_followed_by_anything(tmp_path: Path) -> None:
    manifest = create_demo(tmp_path / "demo")
    result = run_cli("build", "--all", "--json", "--dry-run", "--manifest", str(manifest),
                     program="orchestrator", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "error" not in one_document(result.stdout)
