"""Input files that are not what they claim: devices, FIFOs, directories, huge or
deeply nested files, as the manifest, orchestrator.yaml or $ORCHESTRATOR_CONFIG.

Each is refused before it is read (or before the parser recurses), with one line
naming the path and why, and exit code 2, through the real console script.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.document import MAX_DEPTH, _BoundedLoader, parse
from orchestrator.errors import EXIT_BAD_INPUT, InputError, ManifestError
from orchestrator.fileops import MAX_INPUT_BYTES
from orchestrator.manifest import loads
from orchestrator.settings import load_settings
from tests.helpers.cli import run_cli

MINIMAL = """schema: 1
release: v1
repos:
  felix:
    url: https://example.invalid/felix.git
    ref: v1
    artifacts: {}
"""


def orchestrator(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # The timeout is a safety bound only: a FIFO or /dev/zero must be refused, not waited on.
    return run_cli(*args, program="orchestrator", cwd=cwd, env=env, timeout=60)


def assert_refused(result: subprocess.CompletedProcess[str], path: str, why: str) -> None:
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert path in lines[0] and why in lines[0], result.stderr
    assert len([line for line in lines if not line.startswith("  hint:")]) == 1, result.stderr


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.yaml"
    os.mkfifo(path)  # nobody ever opens it for writing
    return path


def _directory(tmp: Path) -> Path:
    path = tmp / "dir.yaml"
    path.mkdir()
    return path


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "dev-zero": (lambda tmp: Path("/dev/zero"), "not a regular file"),
    "fifo-without-writer": (_fifo, "not a regular file"),
    "directory": (_directory, "a directory"),
    "17-MiB-file": (_huge, "larger than 16 MiB"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_manifest_that_is_no_regular_file_or_too_big_is_refused_before_reading(kind: str, tmp_path: Path) -> None:
    make, why = BAD_FILES[kind]
    path = make(tmp_path)

    result = orchestrator(tmp_path, "manifest", "--manifest", str(path))

    assert_refused(result, str(path), why)


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_config_file_that_is_no_regular_file_or_too_big_is_refused_before_reading(kind: str,
                                                                                   tmp_path: Path) -> None:
    make, why = BAD_FILES[kind]
    path = make(tmp_path)
    (tmp_path / "manifest.yaml").write_text(MINIMAL)

    result = orchestrator(tmp_path, "manifest", ORCHESTRATOR_CONFIG=str(path))

    assert_refused(result, str(path), why)


def test_orchestrator_yaml_in_the_working_directory_is_read_with_the_same_limits(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text(MINIMAL)
    os.mkfifo(tmp_path / "orchestrator.yaml")

    result = orchestrator(tmp_path, "manifest")

    assert_refused(result, "orchestrator.yaml", "not a regular file")


def test_the_limit_is_sixteen_mebibytes_and_a_file_just_under_it_is_read(tmp_path: Path) -> None:
    assert MAX_INPUT_BYTES == 16 * 1024 * 1024
    path = tmp_path / "big.yaml"
    # A valid manifest padded with a comment up to the limit exactly.
    path.write_text(MINIMAL + "#" + "x" * (MAX_INPUT_BYTES - len(MINIMAL) - 2) + "\n")
    assert path.stat().st_size == MAX_INPUT_BYTES

    result = orchestrator(tmp_path, "manifest", "--manifest", str(path))

    assert result.returncode == 0, result.stderr


# -- nesting -------------------------------------------------------------------------


def _flow_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def _flow_maps(depth: int) -> str:
    return "{a: " * depth + "x" + "}" * depth


def _block_maps(depth: int) -> str:
    # One more space per level: the text grows with depth squared (999 levels: 0.5 MB).
    return "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "x\n"


def _block_lists(depth: int) -> str:
    return "- " * depth + "x\n"  # compact nested block sequences, all on one line


NESTINGS = {"flow-lists": _flow_lists, "flow-mappings": _flow_maps, "block-mappings": _block_maps,
            "block-lists": _block_lists}


def _as_description(nested: str) -> str:
    """A valid manifest with ``nested`` as the felix repo's description."""
    indented = "\n".join("      " + line for line in nested.splitlines())
    return MINIMAL.replace("    artifacts: {}\n", f"    artifacts: {{}}\n    description:\n{indented}\n")


def _depths(shape: str, depths: list[int]) -> list[tuple[str, int]]:
    # Block mappings need one more indentation per level: past 999 levels the text
    # alone would be tens of megabytes.
    return [(shape, d) for d in depths if shape != "block-mappings" or d <= 999]


@pytest.mark.parametrize(("shape", "depth"),
                         [case for shape in NESTINGS for case in _depths(shape, [MAX_DEPTH + 1, 500, 999, 10_000])])
def test_deep_nesting_is_refused_with_a_location_never_a_recursion_error(shape: str, depth: int) -> None:
    text = _as_description(NESTINGS[shape](depth))

    with pytest.raises(InputError) as caught:
        loads(text, file="deep.yaml")

    message = str(caught.value)
    assert re.match(r"deep\.yaml:\d+:\d+: ", message) and f"nested more than {MAX_DEPTH} levels" in message, message
    assert caught.value.exit_code == EXIT_BAD_INPUT


@pytest.mark.parametrize(("shape", "depth"),
                         [case for shape in NESTINGS for case in _depths(shape, [500, 999, 100_000])])
def test_the_pure_python_yaml_composer_is_bounded_too(shape: str, depth: int) -> None:
    """Without libyaml (or with one older than 0.2.5) PyYAML's composer recurses once
    per level: the loader used then stops at MAX_DEPTH."""
    with pytest.raises(ManifestError, match="nested"):
        parse(NESTINGS[shape](depth), "deep.yaml", loader=_BoundedLoader)


def test_nesting_up_to_the_limit_is_accepted_where_any_value_is() -> None:
    # The description sits at depth 3; a string there plus (MAX_DEPTH - 4) lists is fine.
    text = _as_description(_flow_lists(MAX_DEPTH - 4))
    with pytest.raises(InputError, match="expected a string, got a list"):
        loads(text)  # past the parser: only the type is wrong


def test_a_deeply_nested_manifest_fails_on_the_command_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(_as_description(_block_maps(999)))

    result = orchestrator(tmp_path, "manifest", "--manifest", str(path))

    assert_refused(result, str(path), "nested more than 64 levels deep")


def test_a_deeply_nested_config_file_is_refused_with_its_location(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("mirrors: " + _flow_maps(5000) + "\n")
    with pytest.raises(InputError, match=r"orchestrator.yaml:1:\d+: .*nest"):
        load_settings(env={}, cwd=tmp_path)


def test_a_manifest_that_is_not_utf8_is_refused_at_the_offending_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("release: v1", "release: v\xe91").encode("latin-1"))

    result = orchestrator(tmp_path, "manifest", "--manifest", str(path))

    assert_refused(result, f"{path}:2:11: not UTF-8 text", "save it as UTF-8")
