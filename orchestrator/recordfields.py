"""Reading untrusted JSON records field by field: release.json, cache state records.

Anyone who can write ``dist/`` or ``.build/`` can put anything in these files. The
reader refuses what a parser could take two ways (duplicate keys, NaN), what would
exhaust it (absurd nesting), and any field of the wrong type, naming the file and the
field's path (``artifacts.felix.files[0].sha256``) in one message.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from orchestrator.errors import OrchestratorError

_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_CONTROL_ONLY = re.compile(r"[\x00-\x1f\x7f]")
# JSON can spell a lone UTF-16 surrogate ("\ud800"): not Unicode text, no encoder takes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


class ReleaseRecordError(OrchestratorError):
    """release.json is missing, unreadable or not a release record (exit 1)."""


class RecordFieldError(ReleaseRecordError):
    """One field of a record has the wrong type or value."""

    def __init__(self, file: str, where: str, problem: str, *, hint: str) -> None:
        super().__init__(f"{file}: {where}: {problem}" if where else f"{file}: {problem}", hint=hint)
        self.file, self.where, self.problem = file, where, problem


def load_json(data: bytes, file: str, hint: str) -> Any:
    """JSON from untrusted bytes: UTF-8, no duplicate keys, no NaN, not absurdly nested;
    RecordFieldError otherwise."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise RecordFieldError(file, "", f"not UTF-8 text (byte {e.start})", hint=hint) from None
    except RecursionError:
        raise RecordFieldError(file, "", "JSON nested too deeply to be a record", hint=hint) from None
    except ValueError as e:
        raise RecordFieldError(file, "", f"not valid JSON: {e}", hint=hint) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:  # two parsers could disagree on which one counts
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
    return found


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


class FieldReader:
    """Type-checks parsed JSON, field by field, naming the first wrong one."""

    def __init__(self, file: str, hint: str) -> None:
        self.file, self.hint = file, hint

    def fail(self, where: str, problem: str) -> NoReturn:
        raise RecordFieldError(self.file, where, problem, hint=self.hint)

    def fields(self, value: Any, where: str, required: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, got {kind(value)}")
        for key in required:
            if key not in value:
                self.fail(_join(where, key), "missing")
        for key in value:
            if key not in required and key not in optional:
                self.fail(_join(where, key), "unknown field")
        return value

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        """An object whose keys are names (repos, artifacts, labels), not fields."""
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, got {kind(value)}")
        for key in value:
            if _CONTROL_ONLY.search(key):
                self.fail(where, f"the name {shown(key)} holds control characters")
            if _SURROGATE.search(key):
                self.fail(where, f"the name {shown(key)} holds a lone surrogate, which is not Unicode text")
        return value

    def string(self, value: Any, where: str, pattern: re.Pattern[str] | None = None, expected: str = "", *,
               plain: bool = True) -> str:
        """A string; ``plain`` (most fields): without control characters, which would
        reach a terminal when the field is shown (an escape sequence rewriting the screen)."""
        if not isinstance(value, str):
            self.fail(where, f"expected {expected or 'a string'}, got {kind(value)}")
        if _SURROGATE.search(value):
            self.fail(where, f"expected Unicode text, got {shown(value)}, which holds a lone surrogate")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(where, f"expected {expected}, got {shown(value)}")
        if plain and _CONTROL_ONLY.search(value):
            self.fail(where, f"expected text without control characters, got {shown(value)}")
        return value

    def optional_string(self, value: Any, where: str, pattern: re.Pattern[str] | None = None,
                        expected: str = "", *, plain: bool = True) -> str | None:
        return None if value is None else self.string(value, where, pattern, expected or "a string or null",
                                                      plain=plain)

    def integer(self, value: Any, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        if type(value) is not int:  # bool is an int to Python, never to us
            self.fail(where, f"expected an integer, got {kind(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            self.fail(where, f"expected an integer from {minimum} to {maximum}" if maximum is not None else
                      f"expected an integer of at least {minimum}, got {value}")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(where, f"expected one of {', '.join(choices)}, got {shown(value)}")
        return value

    def array(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, f"expected an array, got {kind(value)}")
        return value


def safe_relative(path: str) -> bool:
    """A path that names a file inside a directory: relative, no ``..``, no control
    characters or backslashes (SHA256SUMS could not list it plainly)."""
    parts = path.split("/")
    return bool(path) and not _CONTROL.search(path) and all(part not in ("", ".", "..") for part in parts)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    return "an array" if isinstance(value, list) else "an object"


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
