"""Text that is not Unicode: JSON's "\\ud800" escapes in a record, file names that are
not UTF-8 in a repository.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"``); Python's json module turns it
into a str that no UTF-8 encoder accepts, so the strict reader took such a record and
verify, status and publish then died with a UnicodeEncodeError traceback when they
touched the path or printed the field. A repository's (or a recipe's) file name that is
not UTF-8 does the same from the other side: Python names it with surrogate escapes,
and the build died writing the artifact's log, leaving a traceback and no record.

Each is one message naming what is wrong and where, never a traceback, and the record
stays honest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.record_helpers import Workspace, assert_one_clean_message, make_workspace, record_lies


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = make_workspace(tmp_path_factory.mktemp("surrogates"), first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    result = workspace.run("build", "--all")
    assert result.returncode == 0, result.stderr
    return workspace


def with_record(workspace: Workspace, old: str, new: str) -> bytes:
    path = workspace.release_dir / "release.json"
    original = path.read_bytes()
    text = original.decode()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return original


@pytest.mark.parametrize("task", [("verify", "--offline"), ("status",), ("build", "first"),
                                  ("publish", "--all", "--registry", "127.0.0.1:1/")])
@pytest.mark.parametrize("edit", [('"bin/first"', '"bin/\\ud800"'), ('"first": {', '"fir\\udcffst": {'),
                                  ('"ref": "v1.0"', '"ref": "v1.0\\udfff"')],
                         ids=["file path", "artifact name", "repo ref"])
def test_a_record_holding_a_lone_surrogate_is_one_message_naming_the_field(
    built: Workspace, task: tuple[str, ...], edit: tuple[str, str]
) -> None:
    original = with_record(built, *edit)
    try:
        result = built.run(*task)
    finally:
        (built.release_dir / "release.json").write_bytes(original)

    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_clean_message(result, "release.json")
    assert "UnicodeEncodeError" not in result.stderr + result.stdout


@pytest.mark.parametrize("recipe", [
    "mkdir -p out && printf x > out/first && printf y > out/$(printf 'f\\\\377')",
    "mkdir -p out && ln -s /tmp/$(printf 'n\\\\377') out/first",
], ids=["a non-UTF-8 output name", "an output linked to a non-UTF-8 path"])
def test_a_file_name_that_is_not_utf8_fails_the_artifact_with_one_message_and_an_honest_record(
    tmp_path: Path, recipe: str
) -> None:
    workspace = make_workspace(tmp_path, first=recipe, second="mkdir -p out && echo 2 > out/second", library=False)
    workspace.manifest.write_text(workspace.manifest.read_text().replace("outputs: [out/first]",
                                                                         "outputs: ['out/f*']"))

    result = workspace.run("build", "--all")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert "UnicodeEncodeError" not in result.stderr + result.stdout
    data = json.loads((workspace.release_dir / "release.json").read_text())
    assert data["status"] == "failed" and data["artifacts"]["first"]["status"] == "failed"
    assert record_lies(workspace.release_dir) is None
    status = workspace.run("status")
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert not list((workspace.release_dir / "bin").glob("f?")) if (workspace.release_dir / "bin").exists() else True
