"""Signed provenance: provenance.json in a DSSE envelope (provenance.intoto.jsonl) signed
with an ECDSA P-256 or Ed25519 key, checked by `verify --key` and, to show that we speak
the ecosystem's format and not only our own, by an independent verifier written here
from the DSSE spec with nothing but `cryptography`, and by in-toto's securesystemslib."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from orchestrator import dsse, provenance, record
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.publish import publish_release
from orchestrator.signing import Signer, SigningKeyError, Verifier
from orchestrator.verify import VerifyReport, format_report, verify_release
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.registry import APP_COMMIT, LIB_COMMIT, add_images, layers_of, make_release

COMMITS = {"app": APP_COMMIT, "lib": LIB_COMMIT}
KINDS: dict[str, Callable[[], Any]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def write_key(directory: Path, key: Any, *, passphrase: bytes | None = None, name: str = "sign") -> tuple[Path, Path]:
    """``key`` as PKCS#8 PEM (encrypted with ``passphrase``) and its public half; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    private = directory / f"{name}.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    public = directory / f"{name}.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture(params=list(KINDS))
def keys(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    return write_key(tmp_path / "keys", KINDS[request.param]())


@pytest.fixture
def signed(tmp_path: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]) -> Path:
    release_dir = tmp_path / "dist" / manifest.release
    ids = add_images(fake, manifest)
    make_release(release_dir, manifest, ids, layers=layers_of(fake, ids), signer=Signer.load(keys[0]))
    return release_dir


def verify(release_dir: Path, manifest: Manifest, fake: FakeDockerClient, public: Path | None) -> VerifyReport:
    return verify_release(release_dir, manifest, engine=Engine(fake), commits=COMMITS,
                          verifier=Verifier.load(public) if public else None, registry=FakeRegistry(fake))


def signature_check(report: VerifyReport) -> tuple[bool | None, str]:
    (check,) = [c for c in report.checks if c.area == "signature"]
    return check.ok, check.detail


def envelope_of(release_dir: Path) -> dict[str, Any]:
    return json.loads((release_dir / "provenance.intoto.jsonl").read_text())  # type: ignore[no-any-return]


# -- an independent verifier: the DSSE spec (protocol.md), with cryptography only ---------------


def independent_verify(envelope_line: bytes, public_pem: bytes) -> bytes:
    """Verify a DSSE envelope the way the spec says, sharing no code with orchestrator.dsse;
    returns the authenticated payload, or raises."""
    envelope = json.loads(envelope_line)
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    message = b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload
    key = serialization.load_pem_public_key(public_pem)
    for signature in envelope["signatures"]:
        sig = base64.b64decode(signature["sig"])
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(sig, message, ec.ECDSA(hashes.SHA256()))  # DER (ASN.1), as cosign expects
            else:
                assert isinstance(key, ed25519.Ed25519PublicKey)
                key.verify(sig, message)
            return payload
        except InvalidSignature:
            continue
    raise InvalidSignature("no signature verifies")


def test_a_signed_release_verifies_with_its_public_key_round_trip(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    report = verify(signed, manifest, fake, keys[1])

    assert report.ok, format_report(report)
    ok, detail = signature_check(report)
    assert ok is True and detail.startswith(f"signed by {keys[1]} (key id {Verifier.load(keys[1]).keyid});")
    lines = (signed / "provenance.intoto.jsonl").read_bytes().splitlines()
    assert len(lines) == 1, "one envelope per line, one line"
    envelope = envelope_of(signed)
    assert list(envelope) == ["payload", "payloadType", "signatures"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == (signed / "provenance.json").read_bytes()


def test_our_envelope_verifies_with_an_independent_implementation_of_the_spec(
    signed: Path, keys: tuple[Path, Path]
) -> None:
    payload = independent_verify((signed / "provenance.intoto.jsonl").read_bytes(), keys[1].read_bytes())

    assert payload == (signed / "provenance.json").read_bytes()
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"


def test_our_envelope_verifies_with_in_totos_securesystemslib(signed: Path, keys: tuple[Path, Path]) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    envelope = Envelope.from_dict(envelope_of(signed))
    public = serialization.load_pem_public_key(keys[1].read_bytes())
    # securesystemslib matches signatures to keys by key id: ours is a hint, so give it ours.
    key = SSlibKey.from_crypto(public, keyid=envelope_of(signed)["signatures"][0]["keyid"])  # type: ignore[arg-type]

    assert list(envelope.verify([key], 1)) == [key.keyid]
    assert envelope.payload == (signed / "provenance.json").read_bytes()


def test_another_key_does_not_verify_and_says_which_key_signed(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, tmp_path: Path
) -> None:
    _, other = write_key(tmp_path / "other", ec.generate_private_key(ec.SECP256R1()))

    report = verify(signed, manifest, fake, other)

    ok, detail = signature_check(report)
    signer = envelope_of(signed)["signatures"][0]["keyid"]
    assert ok is False and report.failures
    assert detail == f"no signature verifies with {other} (key id {Verifier.load(other).keyid}); signed by key id " \
                     f"{signer}, or altered"
    with pytest.raises(InvalidSignature):
        independent_verify((signed / "provenance.intoto.jsonl").read_bytes(), other.read_bytes())


def test_an_altered_payload_fails_the_signature(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    envelope = envelope_of(signed)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement, indent=2).encode() + b"\n").decode()
    (signed / "provenance.intoto.jsonl").write_text(json.dumps(envelope) + "\n")

    ok, detail = signature_check(verify(signed, manifest, fake, keys[1]))

    assert ok is False and detail.startswith(f"no signature verifies with {keys[1]}")


def test_a_provenance_json_altered_after_signing_fails_naming_the_field(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    # A careful forger: release.json and provenance.json changed together, so they agree;
    # only the signature can tell.
    data = json.loads((signed / "release.json").read_text())
    data["repos"]["lib"]["commit"] = "f" * 40
    (signed / "release.json").write_text(json.dumps(data))
    provenance.write_provenance(record.read(signed), signed, sign=lambda statement: (signed / "provenance.intoto.jsonl")
                                .read_bytes())  # the old envelope kept

    report = verify(signed, manifest, fake, keys[1])

    ok, detail = signature_check(report)
    assert ok is False
    assert detail == ("the signed statement is not provenance.json: predicate.buildDefinition.resolvedDependencies"
                      "[lib].digest.gitCommit differ (provenance.json was changed after it was signed)")
    assert not [c for c in report.failures if c.area == "provenance"], "only the signature tells"


def test_a_missing_envelope_fails_when_a_key_is_given_and_is_unsigned_otherwise(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    (signed / "provenance.intoto.jsonl").unlink()

    assert signature_check(verify(signed, manifest, fake, keys[1])) == (
        False, f"missing: the release is unsigned, so nothing is signed by {keys[1]}")
    unsigned = verify(signed, manifest, fake, None)
    assert signature_check(unsigned) == (
        None, "unsigned: the release was built and published without a signing key (--sign-key)")
    assert unsigned.matches and not unsigned.ok, "unsigned is a finding, not a pass"
    assert format_report(unsigned).endswith("(run them, or say not to: --skip signature)")


def test_a_signed_release_checked_without_a_key_is_not_checked(
    signed: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    report = verify(signed, manifest, fake, None)

    ok, detail = signature_check(report)
    assert ok is None and detail.endswith("but not checked: give the public key with --key") and not report.ok


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "holds 0 envelopes; a release's holds exactly one"),
    (b"{}\n{}\n", "holds 2 envelopes; a release's holds exactly one"),
    (b"not json\n", "not a DSSE envelope: not JSON"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}\n',
     "not a DSSE envelope: signatures is missing, empty or not an array"),
    (b'{"payloadType": "application/vnd.in-toto+json", "payload": "not base64!", "signatures": [{"sig": "AA=="}]}\n',
     "not a DSSE envelope: payload is missing or not base64"),
])
def test_a_damaged_envelope_fails_with_what_is_wrong(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path], content: bytes, problem: str
) -> None:
    (signed / "provenance.intoto.jsonl").write_bytes(content)

    ok, detail = signature_check(verify(signed, manifest, fake, keys[1]))
    assert ok is False and detail.startswith(problem), detail


def test_another_payload_type_fails_even_when_signed_by_the_key(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    statement = (signed / "provenance.json").read_bytes()
    signer = Signer.load(keys[0])
    sig = signer.sign(dsse.pae("text/plain", statement))
    envelope = dsse.Envelope(payload=statement, payload_type="text/plain",
                             signatures=(dsse.Signature(keyid=signer.keyid, sig=sig),))
    (signed / "provenance.intoto.jsonl").write_bytes(dsse.encode(envelope))

    assert signature_check(verify(signed, manifest, fake, keys[1])) == (
        False, "payloadType is 'text/plain', not 'application/vnd.in-toto+json'")


def test_envelopes_are_read_in_every_base64_the_spec_allows() -> None:
    payload = b'{"a": "\xff\xfe?"}'
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for strip in (False, True):
            text = encode(payload).decode()
            text = text.rstrip("=") if strip else text
            line = json.dumps({"payload": text, "payloadType": "t", "signatures": [{"keyid": "", "sig": text}]})
            assert dsse.decode(line.encode()).payload == payload


def test_pae_is_the_specs_example() -> None:
    # protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_publish_signs_the_rewritten_statement_again_and_without_a_key_removes_the_stale_signature(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    lines: list[str] = []
    publish_release(signed, manifest, Engine(fake), artifacts=["app"], log=lines.append, backoff=0.0,
                    signer=Signer.load(keys[0]), registry_client=FakeRegistry(fake))

    assert signature_check(verify(signed, manifest, fake, keys[1]))[0] is True
    payload = independent_verify((signed / "provenance.intoto.jsonl").read_bytes(), keys[1].read_bytes())
    assert payload == (signed / "provenance.json").read_bytes()
    subjects = {s["name"]: s["digest"]["sha256"] for s in json.loads(payload)["subject"]}
    pushed = record.read(signed).artifacts["app/image"].images[0].pushed
    assert subjects["registry.example.invalid:5000/team/app/image:v1.0.0"] == \
        pushed["registry.example.invalid:5000/team/app/image:v1.0.0"].digest.removeprefix("sha256:")

    publish_release(signed, manifest, Engine(fake), artifacts=["lib"], log=lines.append, backoff=0.0,
                    registry_client=FakeRegistry(fake))

    assert not (signed / "provenance.intoto.jsonl").exists()
    assert sum("its old signature provenance.intoto.jsonl was removed" in line for line in lines) == 1
    assert signature_check(verify(signed, manifest, fake, None))[0] is None


# -- keys --------------------------------------------------------------------------------------


def test_an_encrypted_key_needs_its_passphrase_and_only_the_right_one(tmp_path: Path) -> None:
    private, public = write_key(tmp_path, ed25519.Ed25519PrivateKey.generate(), passphrase=b"correct horse")

    with pytest.raises(SigningKeyError, match="is encrypted\n  hint: set its passphrase in the environment: "
                                              "ORCHESTRATOR_SIGN_PASSPHRASE"):
        Signer.load(private)
    with pytest.raises(SigningKeyError, match="the passphrase in ORCHESTRATOR_SIGN_PASSPHRASE does not decrypt it"):
        Signer.load(private, "wrong")
    assert Signer.load(private, "correct horse").keyid == Verifier.load(public).keyid


@pytest.mark.parametrize(("make", "problem"), [
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
     "holds a key of type RSA; use ECDSA P-256 or Ed25519"),
    (lambda: ec.generate_private_key(ec.SECP384R1()), "is an ECDSA key on curve secp384r1; use P-256"),
])
def test_keys_of_another_kind_are_refused_for_signing_and_verifying(
    tmp_path: Path, make: Callable[[], Any], problem: str
) -> None:
    private, public = write_key(tmp_path, make())

    with pytest.raises(SigningKeyError, match=problem):
        Signer.load(private)
    with pytest.raises(SigningKeyError, match=problem):
        Verifier.load(public)


def test_a_key_file_of_the_wrong_half_or_no_key_is_refused_saying_what_to_give(tmp_path: Path) -> None:
    private, public = write_key(tmp_path, ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")

    with pytest.raises(SigningKeyError, match="holds a public key; signing needs the private key"):
        Signer.load(public)
    with pytest.raises(SigningKeyError, match="holds a private key; give its public half"):
        Verifier.load(private)
    with pytest.raises(SigningKeyError, match="is not a PEM private key"):
        Signer.load(tmp_path / "junk.pem")
    with pytest.raises(SigningKeyError, match="does not exist"):
        Signer.load(tmp_path / "absent.pem")
    with pytest.raises(SigningKeyError, match="a key is a small PEM file"):
        Verifier.load(Path("/dev/zero"))
    assert SigningKeyError("x").exit_code == 2


def test_an_envelope_with_more_signatures_than_are_checked_is_refused_unchecked(
    signed: Path, manifest: Manifest, fake: FakeDockerClient, keys: tuple[Path, Path]
) -> None:
    envelope = envelope_of(signed)
    envelope["signatures"] = envelope["signatures"] * 17
    (signed / "provenance.intoto.jsonl").write_text(json.dumps(envelope) + "\n")

    assert signature_check(verify(signed, manifest, fake, keys[1])) == (
        False, "holds 17 signatures; at most 16 are checked")
