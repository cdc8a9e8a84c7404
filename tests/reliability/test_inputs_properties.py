"""Property tests of the manifest loader (Hypothesis).

(a) Whatever the input (valid manifests, the same with keys dropped, values of the
    wrong type, random and unicode strings, control characters, deep nesting,
    duplicate keys, YAML 1.1 traps, random bytes), ``load`` returns a Manifest or
    raises a ManifestError/ManifestErrors (exit code 2): nothing else, ever.
(b) Every accepted manifest round-trips through ``manifest --json``: the JSON is
    serialisable and stable, and a manifest written back from what the JSON
    carries loads to the same JSON (apart from the manifest's path and sha256).

``derandomize=True`` keeps CI stable; ``max_examples`` bounds the cost (~20 s).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.describe import manifest_json
from orchestrator.errors import EXIT_BAD_INPUT, InputError, ManifestError, ManifestErrors
from orchestrator.manifest import Manifest, load, loads
from tests.helpers.cli import run_cli

_SETTINGS = settings(derandomize=True, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- valid manifests, by construction ----------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
# A part of an artifact name that is also a part of an image name (Docker's grammar:
# separators only between alphanumerics), since image artifacts are named {name}.
_name_part = st.from_regex(r"[a-z0-9]{1,4}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,3}){0,2}", fullmatch=True)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
_path_text = st.text(alphabet=_LOWER + "._-", min_size=1, max_size=8).filter(lambda p: p not in (".", ".."))
_env_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@st.composite
def _ref(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.text(alphabet=_LOWER + "-_", min_size=1, max_size=6), min_size=1, max_size=3))
    ref = "/".join(("v" + p) for p in parts)
    return ref


@st.composite
def _command(draw: st.DrawFn) -> str | list[str]:
    if draw(st.booleans()):
        return "make " + draw(_path_text)
    return ["make", *draw(st.lists(_text, max_size=3))]


@st.composite
def valid_manifest(draw: st.DrawFn) -> dict[str, Any]:
    """A manifest dict that the loader must accept: names unique, no two outputs
    with one file name, dependencies only on earlier artifacts (no cycles)."""
    release = draw(st.text(alphabet=_LOWER + "ABC", min_size=1, max_size=3)) + draw(
        st.text(alphabet=_LOWER + "._-", max_size=10))
    data: dict[str, Any] = {"schema": 1, "release": release}
    if draw(st.booleans()):
        defaults: dict[str, Any] = {}
        if draw(st.booleans()):
            defaults["registry"] = draw(st.sampled_from(["", "quay.io/", "localhost:5000/team/", "calico/"]))
        if draw(st.booleans()):
            defaults["tag"] = draw(st.sampled_from(["{release}", "{short_commit}", "latest", "{release}-{commit}"]))
        if draw(st.booleans()):
            defaults["env"] = draw(st.dictionaries(_env_name, _text, max_size=3))
        if draw(st.booleans()):
            defaults["network"] = draw(st.sampled_from(["none", "default", "host"]))
        data["defaults"] = defaults
    repo_names = draw(st.lists(_name_part, min_size=1, max_size=3, unique=True))
    artifact_names = iter(draw(st.lists(
        st.lists(_name_part, min_size=1, max_size=2).map("/".join), min_size=8, max_size=8, unique=True)))
    made: list[tuple[str, str]] = []  # (name, type), in order
    repos: dict[str, Any] = {}
    for index, rname in enumerate(repo_names):
        repo: dict[str, Any] = {
            "url": draw(st.sampled_from(["https://example.invalid/{}.git", "git@example.invalid:team/{}.git",
                                          "file:///srv/git/{}", "ssh://git@example.invalid:22/{}"])).format(rname),
            # The repo's index keeps <repo>-<ref> archive names apart.
            "ref": draw(_ref()) + f"-{index}",
        }
        if draw(st.booleans()):
            repo["commit"] = draw(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))
        if draw(st.booleans()):
            repo["description"] = draw(_text)
        artifacts: dict[str, Any] = {}
        kinds = draw(st.lists(st.sampled_from(["binary", "image", "python-package", "library"]), max_size=3))
        # One library and one python package per repo: both would write the same files.
        for kind in dict.fromkeys(kinds) if kinds else []:
            name = next(artifact_names, None)
            if name is None:
                break
            artifact: dict[str, Any] = {"type": kind}
            if draw(st.booleans()):
                artifact["description"] = draw(_text)
            earlier = [n for n, _ in made]
            if earlier and draw(st.booleans()):
                artifact["requires"] = draw(st.lists(st.sampled_from(earlier), max_size=2))
            if kind != "library":
                if draw(st.booleans()):
                    artifact["env"] = draw(st.dictionaries(_env_name, _text, max_size=2))
                files = [n for n, k in made if k != "image"]
                if files and draw(st.booleans()):
                    artifact["stage"] = {f"in/{draw(_path_text)}": draw(st.sampled_from(files))}
                if draw(st.booleans()):
                    artifact["builder"] = draw(st.sampled_from(["golang:1.22", "quay.io/team/go@sha256:" + "a" * 64]))
            if kind == "binary":
                artifact["command"] = draw(_command())
                # Basenames carry the artifact's position: unique across the release.
                artifact["outputs"] = [f"{draw(_path_text)}/{name.replace('/', '-')}-{i}"
                                       for i in range(draw(st.integers(1, 2)))]
            elif kind == "image":
                if draw(st.booleans()):
                    artifact["tags"] = draw(st.lists(st.sampled_from(
                        ["{registry}{name}:{tag}", "{registry}{name}:latest", "{name}:{short_commit}"]),
                        min_size=1, max_size=3, unique=True))
                if draw(st.booleans()):
                    artifact["dockerfile"] = "docker/" + draw(_path_text)
                if draw(st.booleans()):
                    artifact["buildargs"] = draw(st.dictionaries(_env_name, _text, max_size=2))
            elif kind == "library" and draw(st.booleans()):
                artifact["prefix"] = draw(_path_text)
            artifacts[name] = artifact
            made.append((name, kind))
        repo["artifacts"] = artifacts
        repos[rname] = repo
    data["repos"] = repos
    return data


def dump(data: Any, *, flow: bool = False) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=flow, width=80)


# -- round trip ------------------------------------------------------------------------

_RUNS = ("command", "builder", "env", "network", "stage")
_BY_TYPE = {
    "binary": (*_RUNS, "outputs"),
    "image": (*_RUNS, "dockerfile", "context", "buildargs", "target", "tags"),
    "python-package": (*_RUNS, "outputs"),
    "library": ("prefix",),
}


def written_back(data: dict[str, Any]) -> dict[str, Any]:
    """A manifest made only of what ``manifest --json`` carries."""
    repos: dict[str, Any] = {}
    for rname, repo in data["repos"].items():
        entry: dict[str, Any] = {"url": repo["url"], "ref": repo["ref"]}
        if repo["commit"] is not None:
            entry["commit"] = repo["commit"]
        entry["description"] = repo["description"]
        artifacts: dict[str, Any] = {}
        for aname in repo["artifacts"]:
            resolved = data["artifacts"][aname]
            artifact = {"type": resolved["type"], "description": resolved["description"],
                        "requires": resolved["requires"]}
            for key in _BY_TYPE[resolved["type"]]:
                if resolved[key] is not None:
                    artifact[key] = resolved[key]
            artifacts[aname] = artifact
        entry["artifacts"] = artifacts
        repos[rname] = entry
    return {"schema": data["schema"], "release": data["release"], "defaults": data["defaults"], "repos": repos}


def _without_source(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "manifest"}


def assert_round_trips(manifest: Manifest, text: str) -> None:
    data = manifest_json(manifest)
    assert json.loads(json.dumps(data, indent=2, allow_nan=False)) == data  # plain JSON values only
    assert manifest_json(loads(text, file=str(manifest.path))) == data  # stable: the same text, the same JSON
    again = loads(dump(written_back(data)), file="written-back.yaml")
    assert _without_source(manifest_json(again)) == _without_source(data)


def assert_loads_or_refuses(text: str) -> None:
    """(a) and (b) for one manifest text."""
    try:
        manifest = loads(text, file="generated.yaml")
    except (ManifestError, ManifestErrors) as error:
        event("refused")
        assert error.exit_code == EXIT_BAD_INPUT
        assert "generated.yaml" in str(error).splitlines()[0], error  # located in the file
        return
    event("accepted")
    assert_round_trips(manifest, text)


@settings(_SETTINGS, max_examples=60)
@given(valid_manifest(), st.booleans())
def test_every_generated_valid_manifest_loads_and_round_trips_through_its_json(data: dict[str, Any],
                                                                                flow: bool) -> None:
    text = dump(data, flow=flow)
    manifest = loads(text, file="generated.yaml")
    assert list(manifest.artifacts) == [a for r in data["repos"].values() for a in r["artifacts"]]
    assert_round_trips(manifest, text)


# -- mutations ---------------------------------------------------------------------------

_WRONG = st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=False), st.booleans(), st.none(),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                   st.text(max_size=30), st.text(st.characters(max_codepoint=0x1f), max_size=5),
                   st.text(alphabet="\x00\x01\x7f\u2028\ufeff\U0001f600é/-.:", max_size=8))
_KEYS = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.sampled_from(["<<", "? x", "*a"]))
_TRAPS = ["3.10", "yes", "no", "on", "0755", "0x1F", "1:2:3", "2018-13-45", "2018-01-01", "~", ".inf", "-.nan",
          "1e400", "1" * 5000, "!!int abc", "!!python/object:os.system x", "&a x", "*undefined", "<<: *a", "'", '"',
          "[", "{", "? [a]", "|", ">", "%YAML 1.1", "---", "...", "@x", "`x"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A valid manifest, then 1-3 changes to its values (dropped, of a wrong type,
    renamed keys, deep nesting, YAML 1.1 traps written plain), then 0-3 changes to
    its text (a line repeated: duplicate keys; junk inserted; cut short)."""
    data = draw(valid_manifest())
    raw: list[str] = []  # text written in place of RAW<i> after dumping, unquoted
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["wrong", "trap", "nest", "rename", "drop"]))
        event(f"value mutation: {action}")
        if action == "drop":
            del parent[path[-1]]
        elif action == "wrong":
            parent[path[-1]] = draw(_WRONG)
        elif action in ("nest", "trap"):  # PyYAML's dumper would quote a trap, and recurse on nesting
            if action == "nest":
                depth = draw(st.sampled_from([2, 10, 63, 64, 65, 200, 999, 1001, 5000]))
                opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
                raw.append(opening * depth + "x" + closing * depth)
            else:
                raw.append(draw(st.sampled_from(_TRAPS)))
            parent[path[-1]] = f"RAW{len(raw) - 1}"
        elif isinstance(parent, dict):
            parent[draw(_KEYS)] = parent.pop(path[-1])
    text = dump(data, flow=draw(st.booleans()))
    for i, fragment in reversed(list(enumerate(raw))):
        text = text.replace(f"RAW{i}", fragment)
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["junk", "duplicate", "truncate"]))
        event(f"text mutation: {action}")
        if action == "duplicate" and lines:  # duplicate keys, and worse
            lines.insert(at, lines[min(at, len(lines) - 1)])
        elif action == "junk":
            lines.insert(at, draw(st.text(max_size=12)))
        elif action == "truncate":
            lines = lines[:at]
    return "".join(lines)


@settings(_SETTINGS, max_examples=140)
@given(mutated_text())
def test_a_mutated_manifest_loads_and_round_trips_or_is_refused_with_the_documented_error(text: str) -> None:
    assert_loads_or_refuses(text)


@settings(_SETTINGS, max_examples=60)
@given(st.binary(max_size=200) | valid_manifest().map(lambda d: dump(d).encode()).flatmap(
    lambda data: st.integers(0, len(data)).flatmap(
        lambda cut: st.binary(max_size=8).map(lambda junk: data[:cut] + junk + data[cut:]))))
def test_random_bytes_as_a_manifest_file_are_refused_with_the_documented_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="a-props-") as tmp:
        path = Path(tmp) / "manifest.yaml"
        path.write_bytes(data)
        try:
            manifest = load(path)
        except InputError as error:
            assert isinstance(error, (ManifestError, ManifestErrors)) and error.exit_code == EXIT_BAD_INPUT
            return
        assert_round_trips(manifest, data.decode("utf-8"))


def test_manifest_json_on_the_command_line_is_the_json_the_properties_check(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(dump(_SAMPLE))
    result = run_cli("manifest", "--json", "--manifest", str(path), program="orchestrator", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == manifest_json(load(path))


_SAMPLE: dict[str, Any] = {
    "schema": 1, "release": "v1", "defaults": {"env": {"A": "1"}, "tag": "{release}-{short_commit}"},
    "repos": {"one": {"url": "https://u:secret@example.invalid/one.git", "ref": "v1", "commit": "a" * 40,
                      "artifacts": {"a/b": {"type": "binary", "command": ["make", "x"], "outputs": ["bin/x"]},
                                    "img": {"type": "image", "stage": {"bin/x": "a/b"}},
                                    "lib": {"type": "library"}}}},
}
