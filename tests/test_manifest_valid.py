from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator.describe import manifest_json
from orchestrator.errors import InputError
from orchestrator.kinds import python_package
from orchestrator.kinds.image import image_refs
from orchestrator.manifest import load, loads
from orchestrator.schemafile import json_schema

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "manifests"
VALID = sorted(DATA.glob("valid_*.yaml")) + [ROOT / "manifest.yaml"]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_manifest_loads_and_passes_the_published_json_schema(path: Path) -> None:
    load(path)
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())


def test_committed_schema_file_is_identical_to_the_generated_schema() -> None:
    committed = json.loads((ROOT / "manifest.schema.json").read_text())
    assert committed == json_schema(), "run: invoke manifest --schema > manifest.schema.json"


def test_manifest_starts_with_the_editor_schema_comment() -> None:
    first = (ROOT / "manifest.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=manifest.schema.json"


# Cases the JSON Schema cannot see: YAML-level problems (PyYAML would hide them),
# and meaning (references, cycles, rendered tags, finer string rules) that only the
# loader checks.
_NOT_IN_JSON_SCHEMA = {
    "yaml_syntax", "yaml_tab_indent", "empty", "only_comments", "duplicate_key", "duplicate_repo", "python_tag",
    "merge_key", "duplicate_artifact_across_repos", "requires_unknown", "stage_unknown", "stage_an_image", "cycle",
    "self_dependency", "image_tag_uppercase", "image_tag_bad_placeholder", "ref_commit_conflicts_with_pin",
    "binary_output_collision", "ref_bad_chars", "url_plain_path", "url_fd", "url_ext", "url_dash", "commit_upper",
    "release_slash",
    # jsonschema matches patterns with re.search, whose '$' also matches before a final
    # newline: the loader's full matches are stricter than what editors check.
    "release_trailing_newline", "repo_name_trailing_newline", "artifact_name_trailing_newline",
    "env_name_trailing_newline", "commit_trailing_newline", "requires_trailing_newline",
    "image_tag_trailing_newline", "path_control_character",
    # Rendered image references, Docker's reference grammar, and files that two
    # artifacts would both write: meaning, not shape.
    "image_default_tag_from_ref", "image_registry_not_a_host", "image_same_reference_twice", "image_tag_from_ref",
    "image_tag_from_release", "image_tag_non_ascii", "builder_upper", "registry_scheme", "registry_space",
    "registry_upper", "binary_glob_twice_in_one_repo", "binary_output_collision_within_artifact",
    "library_archives_collide_across_repos", "library_twice_in_one_repo", "python_output_collision",
    # Values PyYAML itself cannot build, and finer string rules.
    "release_explicit_int_tag", "release_impossible_date", "env_value_nul", "ref_upper_case_commit",
    "command_empty_program", "yaml_control_character",
}
_SHAPE_CASES = [p for p in sorted(DATA.glob("invalid_*.yaml")) if p.stem[8:] not in _NOT_IN_JSON_SCHEMA]


@pytest.mark.parametrize("path", _SHAPE_CASES, ids=lambda p: p.stem)
def test_json_schema_refuses_the_shape_errors_it_can_express(path: Path) -> None:
    """Editors validating with manifest.schema.json flag these too (it is looser than
    the loader, never stricter: the valid manifests above pass it)."""
    data = yaml.safe_load(path.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())


def test_calico_manifest_has_eight_pinned_repos_and_the_eleven_documented_artifacts() -> None:
    m = load(ROOT / "manifest.yaml")
    assert list(m.repos) == ["felix", "calicoctl", "node", "libcalico", "libcalico-go", "cni-plugin",
                             "libnetwork-plugin", "kube-controllers"]
    assert {a.name: a.type for a in m.artifacts.values()} == {
        "felix": "binary", "calicoctl": "binary", "calico/node": "image", "libcalico": "python-package",
        "calico/test": "image", "calico/build": "image", "libcalico-go": "library", "calico": "binary",
        "calico-ipam": "binary", "libnetwork-plugin": "binary", "calico/kube-controllers": "image",
    }
    assert all(r.commit and len(r.commit) == 40 for r in m.repos.values())
    assert m.repos["cni-plugin"].commit == "39dd21728c556b854eb42f4c942ef9c1dce5ec9f"
    assert m.repos["libcalico-go"].ref == m.repos["libcalico-go"].commit
    assert m.artifacts["calico/node"].repo == "node"
    assert m.artifacts["felix"].description.startswith("Felix interfaces with the Linux kernel")


def test_defaults_are_applied_and_image_references_rendered() -> None:
    m = load(DATA / "valid_all_types.yaml")
    core = m.artifacts["core"]
    assert dict(core.settings.env) == {"ARCH": "arm64", "GOFLAGS": "-mod=vendor", "ON": "yes"}  # type: ignore[attr-defined]
    assert core.settings.network == "host"  # type: ignore[attr-defined]
    assert m.artifacts["team/node"].settings.network == "none"  # type: ignore[attr-defined]
    assert core.settings.command == ("sh", "-c", "make bin/core")  # type: ignore[attr-defined]
    node = m.artifacts["team/node"]
    assert image_refs(m, node) == (
        "registry.example.invalid:5000/team/team/node:2.10-0123456789ab",
        "registry.example.invalid:5000/team/team/node:latest",
    )
    assert node.dependencies == ("pylib", "core")
    pylib = m.artifacts["pylib"]
    assert pylib.settings == python_package.Settings(command=python_package.DEFAULT_COMMAND, env=pylib.settings.env,
                                                     network=pylib.settings.network)  # type: ignore[attr-defined]
    assert python_package.settings_of(pylib).outputs == ("dist/*.tar.gz", "dist/*.whl")
    assert m.repos["core"].ref == "3.10"


def test_unpinned_commit_placeholders_stay_unrendered_until_the_commit_is_known() -> None:
    text = (DATA / "valid_all_types.yaml").read_text().replace("    ref: 0123456789abcdef0123456789abcdef01234567\n",
                                                               "    ref: main\n")
    m = loads(text)
    assert image_refs(m, m.artifacts["team/node"])[0].endswith(":2.10-{short_commit}")
    assert image_refs(m, m.artifacts["team/node"], "f" * 40)[0].endswith(":2.10-ffffffffffff")


def test_json_view_redacts_url_credentials() -> None:
    data = manifest_json(load(DATA / "valid_all_types.yaml"))
    assert data["repos"]["core"]["url"] == "https://example.invalid/core.git"
    assert "secret" not in json.dumps(data)


def test_several_problems_are_reported_together_in_file_order() -> None:
    text = "schema: 1\nrelease: v1\nrepos:\n  a:\n    url: http://x/a\n    ref: 3.10\n    artifacts: {}\n"
    with pytest.raises(InputError) as caught:
        loads(text, file="m.yaml")
    message = str(caught.value)
    assert message.startswith("2 problems in m.yaml:")
    assert message.index("m.yaml:5:10") < message.index("m.yaml:6:10")


def test_alias_bomb_is_refused_without_exhausting_memory() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]")
    with pytest.raises(InputError, match="too many values"):
        loads("\n".join(lines) + "\n")


def test_a_missing_manifest_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest not found.*--manifest PATH"):
        load(tmp_path / "nope.yaml")


def test_binary_bytes_are_refused_as_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"schema: 1\nrelease: \xff\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load(path)
