"""The editor-facing JSON Schema of the manifest (``manifest.schema.json``), built
from the same field table as the validator (``schema.py``): one JSON Schema fragment
per value kind. It is looser than the loader, never stricter: references, rendered
image names and collisions are meaning, which only the loader checks.
"""

from __future__ import annotations

from typing import Any

from orchestrator import kinds
from orchestrator.gitinput import COMMIT
from orchestrator.schema import (
    ARTIFACT_NAME_RE,
    DEFAULTS_FIELDS,
    ENV_NAME_RE,
    RELEASE_RE,
    REPO_FIELDS,
    REPO_NAME_RE,
    SCHEMA_ID,
    SCHEMA_VERSION,
    TOP_FIELDS,
    Field,
)

_FRAGMENTS: dict[str, dict[str, Any]] = {
    "schema": {"const": SCHEMA_VERSION},
    "release": {"type": "string", "pattern": RELEASE_RE.pattern},
    "string": {"type": "string"},
    "nonempty": {"type": "string", "minLength": 1},
    "url": {"type": "string", "pattern": r"^(https|ssh|git|file)://|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:"},
    "ref": {
        "type": "string",
        "minLength": 1,
        "pattern": "^[^-]",
        # git check-ref-format's rules, as gitinput.ref_problem applies them.
        "not": {"pattern": r"[\x00-\x20\x7f~^:?*\[\\]|^/|/$|//|(^|/)\.|\.lock(/|$)|\.\.|\.$|@\{|^@$"},
    },
    "commit": {"type": "string", "pattern": f"^{COMMIT.pattern}$"},
    "path": {"type": "string", "minLength": 1, "not": {"pattern": r"^/|(^|/)\.\.(/|$)"}},
    "command": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "items": {"type": "string"}},
        ]
    },
    "template": {"type": "string"},
    "registry": {"type": "string", "pattern": "^$|/$"},
    "image-ref": {"type": "string", "minLength": 1},
    "mapping": {"type": "object"},
}
_FRAGMENTS["file"] = {"type": "string", "minLength": 1, "not": {"pattern": r"^/|(^|/)\.\.(/|$)|/$|(^|/)\.$"}}
_FRAGMENTS["duration"] = {
    "oneOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^(?=[0-9])([0-9]+h)?([0-9]+m)?([0-9]+s)?$|^[0-9]+$"},
    ]
}
_FRAGMENTS["paths"] = {"type": "array", "items": _FRAGMENTS["path"]}
_FRAGMENTS["outputs"] = {"type": "array", "minItems": 1, "items": _FRAGMENTS["file"]}
_FRAGMENTS["names"] = {"type": "array", "items": {"type": "string", "pattern": ARTIFACT_NAME_RE.pattern}}
_FRAGMENTS["templates"] = {"type": "array", "minItems": 1, "items": _FRAGMENTS["template"]}
_FRAGMENTS["env"] = {
    "type": "object",
    "propertyNames": {"pattern": ENV_NAME_RE.pattern},
    "additionalProperties": {"type": "string"},
}
_FRAGMENTS["buildargs"] = _FRAGMENTS["env"]
_FRAGMENTS["stage"] = {
    "type": "object",
    "propertyNames": _FRAGMENTS["path"],
    "additionalProperties": {"type": "string", "pattern": ARTIFACT_NAME_RE.pattern},
}


def _object(fields: dict[str, Field], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, field in fields.items():
        fragment = dict((overrides or {}).get(name) or _FRAGMENTS[field.kind])
        fragment["description"] = field.description
        if field.default is not None and field.default != [] and field.default != {}:
            fragment["default"] = field.default
        properties[name] = fragment
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name, field in fields.items() if field.required],
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of manifest schema version 1."""
    defs: dict[str, Any] = {}
    for kind in kinds.names():
        defs[kind] = _object(kinds.fields_of(kind), {"type": {"const": kind}})
    defs["artifact"] = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(kinds.names())}},
        "allOf": [
            {"if": {"properties": {"type": {"const": kind}}}, "then": {"$ref": f"#/$defs/{kind}"}}
            for kind in kinds.names()
        ],
    }
    defs["repo"] = _object(
        REPO_FIELDS,
        {
            "artifacts": {
                "type": "object",
                "propertyNames": {"pattern": ARTIFACT_NAME_RE.pattern},
                "additionalProperties": {"$ref": "#/$defs/artifact"},
            }
        },
    )
    defs["defaults"] = _object(DEFAULTS_FIELDS)
    top = _object(
        TOP_FIELDS,
        {
            "defaults": {"$ref": "#/$defs/defaults"},
            "repos": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": REPO_NAME_RE.pattern},
                "additionalProperties": {"$ref": "#/$defs/repo"},
            },
        },
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Release manifest (orchestrator schema 1)",
        **top,
        "$defs": defs,
    }
