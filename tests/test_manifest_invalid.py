"""Every invalid manifest under tests/data/manifests/ fails with its exact message.

Each file's first line says what the message must contain:
``# expect: LINE:COLUMN: key.path: problem``; the test checks it appears after the
file's name, so position, key path and wording are all pinned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_BAD_INPUT, InputError
from orchestrator.manifest import load

DATA = Path(__file__).parent / "data" / "manifests"
INVALID = sorted(DATA.glob("invalid_*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (.+)", first)
    assert match, f"{path.name}: first line must be '# expect: ...'"
    return match.group(1)


def test_there_are_at_least_thirty_invalid_cases() -> None:
    assert len(INVALID) >= 30


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem.removeprefix("invalid_"))
def test_invalid_manifest_is_refused_with_its_message_and_position(path: Path) -> None:
    expected = expectation(path)
    with pytest.raises(InputError) as caught:
        load(path)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    if re.match(r"\d+:", expected):
        assert f"{path}:{expected}" in message, message
    else:
        assert f"{path}" in message and expected in message, message
    assert "Traceback" not in message
