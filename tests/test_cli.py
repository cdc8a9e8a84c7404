"""The command line, end to end: the real `invoke`/`orchestrator` executables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli

DATA = Path(__file__).parent / "data" / "manifests"


def test_manifest_json_lists_eight_pinned_repos_and_eleven_artifacts() -> None:
    result = run_cli("manifest", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["repos"]) == 8 and len(data["artifacts"]) == 11
    assert data["repos"]["felix"]["commit"] == "30458090588d14445f4b16b5b80e6db80dbffc33"
    assert data["artifacts"]["calico/node"]["images"] == ["calico/node:v3.2.0"]
    assert data["artifacts"]["felix"]["env"] == {"ARCH": "amd64"}
    assert sorted(data["build_order"]) == sorted(data["artifacts"])
    assert list(data) == ["format", "schema", "release", "manifest", "defaults", "repos", "artifacts", "build_order"]


def test_manifest_json_is_byte_identical_across_runs() -> None:
    assert run_cli("manifest", "--json").stdout == run_cli("manifest", "--json").stdout


def test_manifest_table_shows_repo_ref_short_commit_and_artifact_types() -> None:
    result = run_cli("manifest")
    assert result.returncode == 0, result.stderr
    assert "release v3.2.0: 8 repos, 11 artifacts" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("cni-plugin"))
    assert row.split() == ["cni-plugin", "v3.2.0", "39dd21728c55", "calico", "binary"]
    assert "calico-ipam" in result.stdout and "python-package" in result.stdout


def test_manifest_schema_flag_prints_the_committed_schema() -> None:
    result = run_cli("manifest", "--schema")
    assert json.loads(result.stdout) == json.loads((ROOT / "manifest.schema.json").read_text())


@pytest.mark.parametrize("case", ["ref_float", "duplicate_key", "cycle", "url_ext", "empty"])
def test_invalid_manifest_exits_2_with_one_located_message_and_no_traceback(case: str) -> None:
    path = DATA / f"invalid_{case}.yaml"
    result = run_cli("manifest", "--json", "--manifest", str(path))
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]  # with --json, stdout is JSON even for an error
    assert error["exit_code"] == 2 and error["message"].startswith(f"{path}:")
    assert result.stderr.startswith(f"error: {path}:")
    assert "Traceback" not in result.stderr


def test_manifest_path_comes_from_the_environment_and_config_file(tmp_path: Path) -> None:
    manifest = DATA / "valid_minimal.yaml"
    by_env = run_cli("manifest", "--json", env={"ORCHESTRATOR_MANIFEST": str(manifest)})
    assert json.loads(by_env.stdout)["release"] == "v1.0.0"
    (tmp_path / "orchestrator.yaml").write_text(f"manifest: {manifest}\n")
    by_file = run_cli("manifest", "--json", program="orchestrator", cwd=tmp_path)
    assert by_file.returncode == 0, by_file.stderr
    assert json.loads(by_file.stdout)["release"] == "v1.0.0"
    flag_wins = run_cli("manifest", "--json", "--manifest", str(ROOT / "manifest.yaml"), program="orchestrator",
                        cwd=tmp_path)
    assert json.loads(flag_wins.stdout)["release"] == "v3.2.0"


def test_console_script_runs_the_same_tasks_outside_the_checkout(tmp_path: Path) -> None:
    result = run_cli("--list", program="orchestrator", cwd=tmp_path)
    assert result.returncode == 0
    assert "build" in result.stdout and "manifest" in result.stdout


def test_console_script_exits_2_on_an_unknown_flag(tmp_path: Path) -> None:
    result = run_cli("manifest", "--no-such-flag", program="orchestrator", cwd=tmp_path)
    assert result.returncode == 2
    assert "no-such-flag" in result.stderr


def test_build_dry_run_of_felix_prints_only_felix_and_its_command() -> None:
    result = run_cli("build", "felix", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "1 artifact from 1 repo" in result.stdout
    assert "run on the host: make bin/calico-felix" in result.stdout


def test_build_all_and_comma_separated_names_parse() -> None:
    everything = run_cli("build", "--all", "--dry-run")
    assert everything.returncode == 0, everything.stderr
    assert "11 artifacts from 8 repos" in everything.stdout
    two = run_cli("build", "felix,calicoctl", "--dry-run")
    assert two.returncode == 0, two.stderr
    assert "2 artifacts from 2 repos" in two.stdout


def test_unknown_name_exits_2_with_valid_names_and_a_suggestion() -> None:
    result = run_cli("build", "felx", "--dry-run")
    assert result.returncode == 2
    assert "unknown repo or artifact 'felx'; did you mean 'felix'?" in result.stderr
    assert "valid names: calico, calico-ipam" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["manifest", "--json"], ["build", "--all", "--dry-run"]])
def test_lean_start_up_imports_neither_docker_nor_gitpython(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from orchestrator_cli.program import run\n"
        "try:\n"
        f"    run({args!r})\n"
        "finally:\n"
        "    sys.stdout.flush()\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'git', 'requests'))\n"
        "    sys.stderr.write('IMPORTED:' + ','.join(bad) + '\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED:\n" in result.stderr, result.stderr
