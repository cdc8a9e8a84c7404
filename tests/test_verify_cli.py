"""`verify` through the command line: exit 0 only when every check ran and held, every
check that did not run listed, `--skip` to say which may not; `build --sign-key` and
`verify --key`; bad keys and flags are bad input (exit 2), never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from orchestrator.manifest import Manifest
from tests.helpers.cli import run_cli
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import add_images, make_release, small_manifest
from tests.reliability.record_helpers import Workspace, make_workspace
from tests.test_signing import write_key

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def clean(result: subprocess.CompletedProcess[str]) -> str:
    """Its output, after checking it holds no traceback."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Manifest]:
    """A release with images, its manifest's remotes unreachable (example.invalid) and no engine."""
    manifest = small_manifest(tmp_path)
    make_release(tmp_path / "dist" / manifest.release, manifest, add_images(FakeDockerClient(), manifest))
    return tmp_path, manifest


def verify(workspace: Path, manifest: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return run_cli("verify", "--manifest", str(manifest), "--workspace", str(workspace), *args,
                   program="orchestrator", cwd=workspace, env={**NO_DOCKER, **(env or {})})


def test_what_was_not_checked_is_listed_and_fails_unless_skipped(recorded: tuple[Path, Manifest]) -> None:
    workspace, manifest = recorded

    unchecked = verify(workspace, manifest.path, "--skip", "pins")
    assert unchecked.returncode == 1
    out = clean(unchecked)
    assert "[--]    image lib/image:v1.0.0 (lib/image): not checked: no Docker engine" in out
    assert "[--]    signature provenance.intoto.jsonl: unsigned" in out
    assert "release v1.0.0 is not verified: 4 check(s) did not run" in out
    assert "(run them, or say not to: --skip images,signature)" in out
    assert "error: release v1.0.0 is not verified: 4 check(s) did not run" in unchecked.stderr

    skipped = verify(workspace, manifest.path, "--skip", "images,pins", "--skip", "signature")
    assert skipped.returncode == 0, clean(skipped)
    assert "  [skip]  images: not checked (--skip images)" in skipped.stdout
    assert skipped.stdout.rstrip().endswith("verified (7 matched, 0 did not, 0 not checked, skipped: images, "
                                            "signature, pins)")


def test_a_mismatch_fails_whatever_is_skipped_and_json_says_each_checks_area(recorded: tuple[Path, Manifest]) -> None:
    workspace, manifest = recorded
    (workspace / "dist/v1.0.0/bin/app").write_text("tampered\n")

    result = verify(workspace, manifest.path, "--skip", "images,pins,signature", "--json")

    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["skipped"] == ["images", "signature", "pins"]
    assert {c["what"]: c["area"] for c in document["checks"] if c["ok"] is False} == {"file bin/app": "files"}
    assert "does not verify: 1 mismatch(es)" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--skip", "imgaes"), "--skip 'imgaes' is not a check that can be skipped; did you mean 'images'?\n"
                           "  hint: skip any of: images, signature, registry, pins"),
    (("--skip", "files"), "--skip 'files' is not a check that can be skipped"),
    (("--key", "k.pub", "--skip", "signature"), "--key and --skip signature contradict each other"),
    (("--registry", "--skip", "registry"), "--registry and --skip registry contradict each other"),
    (("--key", "absent.pub"), "public key absent.pub does not exist"),
])
def test_bad_verify_flags_are_bad_input(recorded: tuple[Path, Manifest], args: tuple[str, ...], message: str) -> None:
    workspace, manifest = recorded

    result = verify(workspace, manifest.path, *args)

    assert result.returncode == 2, clean(result)
    assert message in clean(result)


@pytest.fixture
def signing_workspace(tmp_path: Path) -> tuple[Workspace, Path, Path]:
    ws = make_workspace(tmp_path, first="mkdir -p out && echo first > out/first",
                        second="mkdir -p out && echo second > out/second", library=False)
    private, public = write_key(tmp_path / "keys", ec.generate_private_key(ec.SECP256R1()),
                                passphrase=b"s3cret passphrase")
    return ws, private, public


def test_build_signs_with_an_encrypted_key_and_verify_checks_it(signing_workspace: tuple[Workspace, Path, Path],
                                                                tmp_path: Path) -> None:
    ws, private, public = signing_workspace

    built = run_cli(*ws.args("build", "--all", "--sign-key", str(private)), program="orchestrator", cwd=ws.root,
                    env={**ws.env(), "ORCHESTRATOR_SIGN_PASSPHRASE": "s3cret passphrase"})
    assert built.returncode == 0, clean(built)
    assert "s3cret" not in built.stdout + built.stderr
    assert (ws.release_dir / "provenance.intoto.jsonl").is_file()

    good = verify(ws.root, ws.manifest, "--offline", "--key", str(public), env=ws.env())
    assert good.returncode == 0, clean(good)
    assert f"[ok]    signature provenance.intoto.jsonl: signed by {public}" in good.stdout

    _, other = write_key(tmp_path / "other", ed25519.Ed25519PrivateKey.generate())
    wrong = verify(ws.root, ws.manifest, "--offline", "--key", str(other), env=ws.env())
    assert wrong.returncode == 1 and "[FAIL]  signature provenance.intoto.jsonl: no signature verifies" in clean(wrong)

    no_key = verify(ws.root, ws.manifest, "--offline", env=ws.env())
    assert no_key.returncode == 1 and "but not checked: give the public key with --key" in clean(no_key)


def test_the_signing_key_comes_from_the_environment_or_the_config_and_a_bad_one_stops_the_build_first(
    signing_workspace: tuple[Workspace, Path, Path]
) -> None:
    ws, private, _ = signing_workspace

    def build(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*ws.args("build", "--all", *args), program="orchestrator", cwd=ws.root, env={**ws.env(), **env})

    no_passphrase = build({"ORCHESTRATOR_SIGN_KEY": str(private)})
    assert no_passphrase.returncode == 2
    assert f"signing key {private} is encrypted" in clean(no_passphrase)
    assert "ORCHESTRATOR_SIGN_PASSPHRASE" in no_passphrase.stderr
    assert not (ws.root / "dist").exists(), "nothing built before the key was refused"

    wrong = build({"ORCHESTRATOR_SIGN_KEY": str(private), "ORCHESTRATOR_SIGN_PASSPHRASE": "nope"})
    assert wrong.returncode == 2 and "does not decrypt it" in clean(wrong)

    (ws.root / "orchestrator.yaml").write_text(f"sign_key: {private}\nsign_passphrase: s3cret passphrase\n")
    in_file = build({})
    assert in_file.returncode == 2 and "a signing key's passphrase is never read from a file" in clean(in_file)
    assert "s3cret" not in in_file.stdout + in_file.stderr

    (ws.root / "orchestrator.yaml").write_text(f"sign_key: {private}\n")
    configured = build({"ORCHESTRATOR_SIGN_PASSPHRASE": "s3cret passphrase"})
    assert configured.returncode == 0, clean(configured)
    assert (ws.release_dir / "provenance.intoto.jsonl").is_file()

    (ws.root / "orchestrator.yaml").unlink()
    unsigned = build({})  # no key any more: the old signature would sign other bytes
    assert unsigned.returncode == 0, clean(unsigned)
    assert not (ws.release_dir / "provenance.intoto.jsonl").exists()


def test_help_shows_what_each_new_flag_takes() -> None:
    verify_help = run_cli("--help", "verify", program="orchestrator").stdout
    build_help = run_cli("--help", "build", program="orchestrator").stdout

    assert "--key=PATH" in verify_help and "--skip=CHECKS" in verify_help and "-r, --registry " in verify_help
    assert "--release-dir=DIR" in verify_help, "underscored parameters get their placeholder too"
    assert "--sign-key=PATH" in build_help and "ORCHESTRATOR_SIGN_PASSPHRASE" in build_help
