"""provenance.json: an in-toto Statement v1 with SLSA Provenance v1, derived from release.json."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator import provenance
from orchestrator import record as records
from orchestrator.manifest import Manifest
from orchestrator.record import Pushed, Release
from tests.helpers.registry import APP_COMMIT, LIB_COMMIT, make_release, small_manifest

IDS = {"app/image": "sha256:" + "a" * 64, "lib/image": "sha256:" + "b" * 64}


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return small_manifest(tmp_path)


@pytest.fixture
def release_dir(tmp_path: Path, manifest: Manifest) -> Path:
    return tmp_path / "dist" / manifest.release


@pytest.fixture
def record(release_dir: Path, manifest: Manifest) -> Release:
    make_release(release_dir, manifest, IDS)
    return records.read(release_dir)


def test_the_statement_is_an_in_toto_v1_statement_of_slsa_provenance_v1(
    record: Release
) -> None:
    statement = provenance.statement(record)

    assert list(statement) == ["_type", "subject", "predicateType", "predicate"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert list(statement["predicate"]) == ["buildDefinition", "runDetails"]
    assert list(statement["predicate"]["buildDefinition"]) == [
        "buildType", "externalParameters", "resolvedDependencies"
    ]
    assert statement["predicate"]["buildDefinition"]["buildType"] == provenance.BUILD_TYPE


def test_subjects_are_every_file_with_its_sha256_and_every_image_ref_with_its_id(
    record: Release, release_dir: Path
) -> None:
    subjects = provenance.statement(record)["subject"]

    sums = dict(line.split("  ")[::-1] for line in (release_dir / "SHA256SUMS").read_text().splitlines())
    assert subjects == [
        {"name": "bin/app", "digest": {"sha256": sums["bin/app"]}},
        {"name": "src/lib-main.tar.gz", "digest": {"sha256": sums["src/lib-main.tar.gz"]}},
        {"name": "registry.example.invalid:5000/team/app/image:v1.0.0", "digest": {"sha256": "a" * 64}},
        {"name": "registry.example.invalid:5000/team/app/image:latest", "digest": {"sha256": "a" * 64}},
        {"name": "lib/image:v1.0.0", "digest": {"sha256": "b" * 64}},
    ]


def test_a_failed_artifact_is_no_subject_as_it_is_not_published(manifest: Manifest, release_dir: Path) -> None:
    make_release(release_dir, manifest, IDS, failed={"lib": "make: *** [all] Error 2"})
    record = records.read(release_dir)

    names = [s["name"] for s in provenance.statement(record)["subject"]]

    assert "src/lib-main.tar.gz" not in names
    assert "bin/app" in names


def test_a_pushed_image_ref_carries_its_registry_digest(record: Release) -> None:
    artifact = record.artifacts["app/image"]
    image = artifact.images[0]
    pushed = "sha256:" + "c" * 64
    image = replace(image, pushed={
        "registry.example.invalid:5000/team/app/image:v1.0.0": Pushed(digest=pushed, id=image.id),
        "127.0.0.1:5000/app/image:v1.0.0": Pushed(digest=pushed, id=image.id),
    })
    record = replace(record, artifacts={**record.artifacts, "app/image": replace(artifact, images=(image,))})

    subjects = {s["name"]: s["digest"]["sha256"] for s in provenance.statement(record)["subject"]}

    assert subjects["registry.example.invalid:5000/team/app/image:v1.0.0"] == "c" * 64
    assert subjects["registry.example.invalid:5000/team/app/image:latest"] == "a" * 64, "not pushed: the image id"
    assert subjects["127.0.0.1:5000/app/image:v1.0.0"] == "c" * 64


def test_resolved_dependencies_are_every_repo_at_its_commit_without_credentials(
    record: Release
) -> None:
    dependencies = provenance.statement(record)["predicate"]["buildDefinition"]["resolvedDependencies"]

    assert dependencies == [
        {"uri": "git+https://example.invalid/app.git@v1.0.0", "digest": {"gitCommit": APP_COMMIT}, "name": "app"},
        {"uri": "git+https://example.invalid/lib.git@main", "digest": {"gitCommit": LIB_COMMIT}, "name": "lib"},
    ]
    assert "tok3n-value" not in json.dumps(provenance.statement(record))


def test_external_parameters_name_the_release_the_manifest_and_the_artifacts(
    manifest: Manifest, record: Release
) -> None:
    parameters = provenance.statement(record)["predicate"]["buildDefinition"]["externalParameters"]

    assert parameters == {
        "release": "v1.0.0",
        "manifest": {"path": str(manifest.path), "sha256": manifest.sha256},
        "artifacts": ["app", "app/image", "lib", "lib/image"],
    }


def test_run_details_name_the_builder_and_the_build_times_of_the_record(
    record: Release
) -> None:
    details = provenance.statement(record)["predicate"]["runDetails"]

    assert details["builder"] == {"id": provenance.BUILDER_ID, "version": {"release-orchestrator": record.orchestrator}}
    assert details["metadata"] == {"startedOn": "2018-01-01T00:00:00Z", "finishedOn": record.finished}


def test_provenance_json_is_byte_identical_when_written_twice_from_one_record(
    record: Release, release_dir: Path
) -> None:
    provenance.write_provenance(record, release_dir)
    first = (release_dir / provenance.FILENAME).read_bytes()
    read_back = records.read(release_dir)

    provenance.write_provenance(read_back, release_dir)
    second = (release_dir / provenance.FILENAME).read_bytes()

    assert first == second
    assert json.loads(first) == provenance.statement(record)
    assert not list(release_dir.glob(".provenance.json.tmp-*")), "written through a temp file and a rename"
