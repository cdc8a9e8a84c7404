"""Manifest schema version 1: the tables of keys (top level, defaults, repos; each
artifact kind's own keys live in its module, ``orchestrator.kinds``), from which both
the validator (`manifest.py`) and the published JSON Schema (`manifest.schema.json`)
are derived.

A key's *kind* names one value check; each check returns ``None`` or a problem
sentence, plus an optional hint. The same kinds name the JSON Schema fragments
(``schemafile.py``), so editors' validation and ours are derived from one table.
Refs and URLs are judged by ``gitinput``, image references by ``imageref``: the
same functions the fetch and the build rely on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator import gitinput, imageref
from orchestrator.gitinput import shown

SCHEMA_VERSION = 1
SCHEMA_ID = "https://example.invalid/orchestrator/manifest.schema.json"

# Patterns carry '^...$' for the JSON Schema (ECMA regexes, matched anywhere); Python
# code must use fullmatch, since '$' also matches before a final newline. Names are
# bounded: each becomes a file or directory name (.build/src/<repo>, dist/<release>,
# .build/logs/<release>/<artifact>.log), and file names stop at 255 bytes.
REPO_NAME_RE = re.compile(r"^(?=.{1,100}$)[a-z0-9][a-z0-9._-]*$")
# Artifact names double as image names (calico/node), hence docker's lowercase grammar.
ARTIFACT_NAME_RE = re.compile(r"^(?=.{1,128}$)[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
RELEASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
REPO_NAME_HINT = "lower-case letters, digits, '.', '_', '-'; starting with a letter or digit; at most 100 characters"
ARTIFACT_NAME_HINT = ("lower-case letters, digits, '.', '_', '-', with '/' between parts (calico/node); "
                      "at most 128 characters")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_FIELDS = ("release", "repo", "ref", "commit", "short_commit", "registry", "name", "tag")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Check = Callable[[Any], "tuple[str, str | None] | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One key of a manifest mapping."""

    kind: str
    description: str
    required: bool = False
    default: Any = None


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        text = str(value)
        return f"a number ({text if len(text) <= 40 else text[:36] + '...'})"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def type_problem(expected: str, value: Any) -> tuple[str, str | None]:
    """The standard "expected X, got Y" problem (the caller adds the quoting hint)."""
    return f"expected {expected}, got {_type_name(value)}", None


def _string(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    return None


def _nonempty(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    if not value.strip():
        return "must not be empty", None
    return None


def _pattern(regex: re.Pattern[str], what: str, hint: str) -> Check:
    def check(value: Any) -> tuple[str, str | None] | None:
        if not isinstance(value, str):
            return type_problem("a string", value)
        if not regex.fullmatch(value):
            return f"{shown(value)} is not a valid {what}", hint
        return None

    return check


def _problem(found: gitinput.Problem | None) -> tuple[str, str | None] | None:
    return (found.what, found.hint) if found else None


def check_url(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    return _problem(gitinput.url_problem(value))


def check_ref(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    return _problem(gitinput.ref_problem(value))


def check_commit(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a 40-hex commit id", value)
    if not gitinput.COMMIT.fullmatch(value):
        if gitinput.ANY_CASE_COMMIT.fullmatch(value):
            return f"commit {value!r} has upper-case hex", "write the commit in lower case"
        return (
            f"commit {shown(value)} is not a full 40-hex commit id",
            "abbreviated ids are ambiguous; `git rev-parse <ref>^{commit}` prints the full one",
        )
    return None


def check_path(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a relative path", value)
    if not value:
        return "path must not be empty", None
    if _CONTROL.search(value):
        return f"path {shown(value)} contains a control character", "file names here are printable text"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        return f"path {value!r} is absolute", "paths are relative to the repository checkout"
    if ".." in re.split(r"[/\\]", value):
        return f"path {value!r} escapes the checkout", "paths must stay inside the repository checkout"
    return None


def check_file_path(value: Any) -> tuple[str, str | None] | None:
    """A path naming one file: no trailing '/' and not '.'."""
    problem = check_path(value)
    if problem is None and (value.endswith("/") or value.rsplit("/", 1)[-1] == "."):
        return f"path {shown(value)} names a directory, not a file", "name the file (globs allowed)"
    return problem


def _list_of(item: Check, what: str, *, nonempty: bool = False) -> Check:
    def check(value: Any) -> tuple[str, str | None] | None:
        if not isinstance(value, list):
            return type_problem(f"a list of {what}", value)
        if nonempty and not value:
            return f"expected at least one {what[:-1] if what.endswith('s') else what}", None
        return None  # items are checked one by one by the validator (for their positions)

    check.item = item  # type: ignore[attr-defined]
    return check


def _map_of(key: Check, item: Check, what: str) -> Check:
    def check(value: Any) -> tuple[str, str | None] | None:
        if not isinstance(value, dict):
            return type_problem(f"a mapping of {what}", value)
        return None

    check.key = key  # type: ignore[attr-defined]
    check.item = item  # type: ignore[attr-defined]
    return check


def check_command(value: Any) -> tuple[str, str | None] | None:
    if isinstance(value, str):
        return None if value.strip() else ("command must not be empty", None)
    if isinstance(value, list):
        if not value:
            return "command must not be empty", None
        if isinstance(value[0], str) and not value[0].strip():
            return "the program (the first item) must not be empty", "e.g. [make, bin/tool]"
        return None
    return type_problem("a string (run with sh -c) or a list of strings (argv)", value)


check_command.item = _string  # type: ignore[attr-defined]


def check_template(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    for field in re.findall(r"\{([^{}]*)\}", value):
        if field not in TEMPLATE_FIELDS:
            return (
                f"unknown placeholder {{{field}}} in {value!r}",
                "placeholders: " + " ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS),
            )
    return None


# `timeout:` values: seconds as a number, or a duration such as 90s, 30m, 2h, 1h30m.
DURATION_RE = re.compile(r"(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?")
MAX_TIMEOUT = 7 * 24 * 3600  # a week: anything longer is a mistake, not a build
DEFAULT_TIMEOUT = "2h"  # a hung recipe never holds a CI runner forever


def duration_seconds(value: Any) -> float | None:
    """``value`` (a number of seconds or a duration text) in seconds; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    match = DURATION_RE.fullmatch(value)
    if match is None or not any(match.groupdict().values()):
        return None
    return float(int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0))


def check_duration(value: Any) -> tuple[str, str | None] | None:
    seconds = duration_seconds(value)
    if seconds is None:
        return (f"{value!r} is not a duration", "seconds as a number, or 90s, 30m, 2h, 1h30m")
    if not 0 < seconds <= MAX_TIMEOUT:
        return (f"timeout {value!r} must be more than 0 and at most a week", None)
    return None


def check_registry(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("a string", value)
    problem = imageref.registry_problem(value)
    if problem is None:
        return None
    if not value.endswith("/") and imageref.registry_problem(value + "/") is None:
        return f"registry {value!r} must end with '/'", f"write {value + '/'!r}"
    return f"registry {shown(value)} cannot start an image name: {problem}", "write host[:port]/ or host/namespace/"


def check_image(value: Any) -> tuple[str, str | None] | None:
    if not isinstance(value, str):
        return type_problem("an image reference", value)
    problem = imageref.problem(value, digest=True)
    if problem is None:
        return None
    return f"{shown(value)} is not a valid image reference: {problem}", "e.g. golang:1.22 or quay.io/team/go@sha256:..."


def check_schema_version(value: Any) -> tuple[str, str | None] | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return type_problem(f"the number {SCHEMA_VERSION}", value)
    if value != SCHEMA_VERSION:
        return (
            f"unsupported schema version {value}",
            f"this orchestrator reads schema {SCHEMA_VERSION}; upgrade it or rewrite the manifest",
        )
    return None


def _mapping(value: Any) -> tuple[str, str | None] | None:
    return None if isinstance(value, dict) else type_problem("a mapping", value)


_artifact_name = _pattern(
    ARTIFACT_NAME_RE, "artifact name", ARTIFACT_NAME_HINT
)
_env_name = _pattern(ENV_NAME_RE, "environment variable name", "letters, digits and '_', not starting with a digit")

CHECKS: dict[str, Check] = {
    "schema": check_schema_version,
    "release": _pattern(RELEASE_RE, "release name",
                        "letters, digits, '.', '_', '+', '-', at most 128; it names dist/<release>/"),
    "string": _string,
    "nonempty": _nonempty,
    "url": check_url,
    "ref": check_ref,
    "commit": check_commit,
    "path": check_path,
    "paths": _list_of(check_path, "paths"),
    "outputs": _list_of(check_file_path, "paths", nonempty=True),
    "file": check_file_path,
    "names": _list_of(_artifact_name, "artifact names"),
    "env": _map_of(_env_name, _string, "variable names to strings"),
    "buildargs": _map_of(_env_name, _string, "build-arg names to strings"),
    "stage": _map_of(check_path, _artifact_name, "destination paths to artifact names"),
    "command": check_command,
    "templates": _list_of(check_template, "tag templates", nonempty=True),
    "template": check_template,
    "registry": check_registry,
    "duration": check_duration,
    "image-ref": check_image,
    "mapping": _mapping,
}

REPO_FIELDS: dict[str, Field] = {
    "url": Field(kind="url", required=True, description="Git URL (https, ssh, git or file)."),
    "ref": Field(kind="ref", required=True, description="Tag, branch, or full 40-hex commit."),
    "commit": Field(kind="commit", description="Pin: the ref MUST resolve to this 40-hex commit."),
    "description": Field(kind="string", description="What the repository is."),
    "artifacts": Field(kind="mapping", required=True, description="Artifact name -> artifact."),
}

DEFAULTS_FIELDS: dict[str, Field] = {
    "registry": Field(kind="registry", description="Prefix for image references, e.g. quay.io/.", default=""),
    "tag": Field(kind="template", description="Image tag template.", default="{release}"),
    "env": Field(kind="env", description="Environment passed to every build command.", default={}),
    "network": Field(kind="nonempty", description="Docker network mode for builds.", default="default"),
    "timeout": Field(kind="duration", description="Time limit of every artifact's build (seconds, or 90s, 30m, "
                     "2h).", default=DEFAULT_TIMEOUT),
}

TOP_FIELDS: dict[str, Field] = {
    "schema": Field(kind="schema", required=True, description="Manifest schema version (1)."),
    "release": Field(kind="release", required=True, description="Release name, e.g. v3.2.0."),
    "defaults": Field(kind="mapping", description="Defaults for every repo and artifact.", default={}),
    "repos": Field(kind="mapping", required=True, description="Repository name -> repository."),
}
