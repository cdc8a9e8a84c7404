"""Signing provenance.json, and checking a signature: keys, and the envelope beside the statement.

A release is signed with a private key (ECDSA P-256 or Ed25519, PEM: PKCS#8, or
``EC PRIVATE KEY`` as openssl writes it), optionally encrypted, its passphrase only in
the environment (``ORCHESTRATOR_SIGN_PASSPHRASE``), never on a command line or in a
file. The signature is a DSSE envelope (``orchestrator.dsse``) whose payload is
provenance.json byte for byte, in ``provenance.intoto.jsonl`` beside it: what cosign's
``verify-blob-attestation`` and in-toto's tools read. ECDSA signatures are DER-encoded
over SHA-256 of the PAE, as cosign writes and expects; Ed25519 signs the PAE itself.

The key id is a hint (DSSE leaves it unauthenticated): the sha256 of the public key's
DER SubjectPublicKeyInfo (``openssl pkey -pubin -in KEY.pub -outform DER | sha256sum``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from orchestrator import dsse, record
from orchestrator.errors import InputError
from orchestrator.fileops import InputFileError, read_limited
from orchestrator.integrity import Check
from orchestrator.provenance import differences

ENVELOPE = record.ENVELOPE
PASSPHRASE_ENV = "ORCHESTRATOR_SIGN_PASSPHRASE"
MAX_KEY_BYTES = 64 * 1024
MAX_SIGNATURES = 16  # each costs a verification: an envelope of a million is refused, not checked
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024  # a statement of every file and image of a release, base64'd
_MAKE_KEY = ("make one with `openssl genpkey -algorithm ed25519 -out sign.pem` (or `-algorithm EC -pkeyopt "
             "ec_paramgen_curve:P-256`) and its public half with `openssl pkey -in sign.pem -pubout -out sign.pub`")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class SigningKeyError(InputError):
    """A signing or verification key that cannot be used (exit 2): missing, not PEM, the
    wrong kind, encrypted without (or with the wrong) passphrase."""


def _read_key(path: Path, role: str) -> bytes:
    try:
        return read_limited(path, limit=MAX_KEY_BYTES)
    except FileNotFoundError:
        raise SigningKeyError(f"{role} {path} does not exist", hint=_MAKE_KEY) from None
    except InputFileError as e:
        raise SigningKeyError(f"{role} {path}: {e.strerror}; a key is a small PEM file") from None
    except OSError as e:
        raise SigningKeyError(f"{role} {path} cannot be read: {e.strerror}") from None


def _key_id(public: PublicKey) -> str:
    spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _usable(key: object, path: Path, role: str) -> None:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise SigningKeyError(f"{role} {path} is an ECDSA key on curve {key.curve.name}; use P-256 (prime256v1) "
                                  "or Ed25519", hint=_MAKE_KEY)
    elif not isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
        raise SigningKeyError(f"{role} {path} holds a key of type {kind}; use ECDSA P-256 or Ed25519",
                              hint=_MAKE_KEY)


class Signer:
    """A private key that signs statements; load one with ``Signer.load``."""

    def __init__(self, key: PrivateKey, path: Path) -> None:
        self._key, self.path = key, path
        self.keyid = _key_id(key.public_key())

    @classmethod
    def load(cls, path: Path, passphrase: str | None = None) -> Signer:
        """The private key in PEM file ``path``, decrypted with ``passphrase`` if it is encrypted."""
        data = _read_key(path, "signing key")
        if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
            raise SigningKeyError(f"signing key {path} holds a public key; signing needs the private key",
                                  hint="give the private key's file (the public one is for `verify --key`)")
        password = passphrase.encode() if passphrase else None
        try:
            try:
                key = serialization.load_pem_private_key(data, password=password)
            except TypeError as e:
                if password is None:  # encrypted, and no passphrase
                    raise SigningKeyError(f"signing key {path} is encrypted",
                                          hint=f"set its passphrase in the environment: {PASSPHRASE_ENV}") from e
                key = serialization.load_pem_private_key(data, password=None)  # not encrypted: none needed
        except ValueError as e:
            if password is not None and b"ENCRYPTED" in data:
                raise SigningKeyError(f"signing key {path}: the passphrase in {PASSPHRASE_ENV} does not decrypt it",
                                      hint=f"set the right passphrase in {PASSPHRASE_ENV}") from e
            raise SigningKeyError(f"signing key {path} is not a PEM private key", hint=_MAKE_KEY) from e
        except UnsupportedAlgorithm as e:
            raise SigningKeyError(f"signing key {path} is a kind of key this orchestrator cannot use",
                                  hint=_MAKE_KEY) from e
        _usable(key, path, "signing key")
        assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
        return cls(key, path)

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(message)

    def envelope(self, statement: bytes) -> bytes:
        """The DSSE envelope line of ``statement`` (an in-toto statement's bytes), signed."""
        signature = dsse.Signature(keyid=self.keyid, sig=self.sign(dsse.pae(dsse.IN_TOTO, statement)))
        return dsse.encode(dsse.Envelope(payload=statement, payload_type=dsse.IN_TOTO, signatures=(signature,)))


class Verifier:
    """A public key that checks signatures; load one with ``Verifier.load``."""

    def __init__(self, key: PublicKey, path: Path) -> None:
        self._key, self.path = key, path
        self.keyid = _key_id(key)

    @classmethod
    def load(cls, path: Path) -> Verifier:
        data = _read_key(path, "public key")
        if b"PRIVATE KEY-----" in data:
            raise SigningKeyError(f"public key {path} holds a private key; give its public half",
                                  hint=f"openssl pkey -in {path} -pubout -out key.pub")
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise SigningKeyError(f"public key {path} is not a PEM public key",
                                  hint="give the `-----BEGIN PUBLIC KEY-----` file the release was signed for") from e
        _usable(key, path, "public key")
        assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
        return cls(key, path)

    def verifies(self, signature: bytes, message: bytes) -> bool:
        try:
            if isinstance(self._key, ec.EllipticCurvePublicKey):
                self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            else:
                self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def envelope_checks(release_dir: Path, verifier: Verifier | None) -> Iterator[Check]:
    """Is provenance.json signed, by the key of ``verifier``? Unsigned, or signed but
    without a key to check it with, is a check that did not run (``ok=None``), never a pass."""
    path = release_dir / ENVELOPE
    what = f"signature {ENVELOPE}"
    try:
        data = read_limited(path, limit=MAX_ENVELOPE_BYTES)
    except FileNotFoundError:
        if verifier is None:
            yield Check(what=what, ok=None, detail="unsigned: the release was built and published without a "
                                                   "signing key (--sign-key)")
        else:
            yield Check(what=what, ok=False, detail=f"missing: the release is unsigned, so nothing is signed by "
                                                    f"{verifier.path}")
        return
    except OSError as e:
        yield Check(what=what, ok=False, detail=f"cannot be read: {e.strerror}")
        return
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) != 1:
        yield Check(what=what, ok=False, detail=f"holds {len(lines)} envelopes; a release's holds exactly one")
        return
    try:
        envelope = dsse.decode(lines[0])
    except dsse.EnvelopeError as e:
        yield Check(what=what, ok=False, detail=f"not a DSSE envelope: {e}")
        return
    if len(envelope.signatures) > MAX_SIGNATURES:
        yield Check(what=what, ok=False, detail=f"holds {len(envelope.signatures)} signatures; at most "
                                                f"{MAX_SIGNATURES} are checked")
        return
    keyids = ", ".join(sorted({s.keyid or "(none)" for s in envelope.signatures}))
    if verifier is None:
        yield Check(what=what, ok=None, detail=f"signed (key id {keyids}), but not checked: give the public key "
                                               "with --key")
        return
    if envelope.payload_type != dsse.IN_TOTO:
        yield Check(what=what, ok=False, detail=f"payloadType is {envelope.payload_type!r}, not {dsse.IN_TOTO!r}")
    elif not any(verifier.verifies(s.sig, envelope.pae()) for s in envelope.signatures):
        yield Check(what=what, ok=False, detail=f"no signature verifies with {verifier.path} (key id "
                                                f"{verifier.keyid}); signed by key id {keyids}, or altered")
    else:
        yield from _payload_checks(release_dir, envelope.payload, verifier)


def _payload_checks(release_dir: Path, payload: bytes, verifier: Verifier) -> Iterator[Check]:
    """The signed statement must be provenance.json, byte for byte."""
    what = f"signature {ENVELOPE}"
    try:
        statement = read_limited(release_dir / record.PROVENANCE, limit=MAX_ENVELOPE_BYTES)
    except OSError as e:
        yield Check(what=what, ok=False, detail=f"signed by {verifier.path}, but {record.PROVENANCE} cannot be "
                                                f"read: {e.strerror}")
        return
    if statement == payload:
        yield Check(what=what, ok=True, detail=f"signed by {verifier.path} (key id {verifier.keyid}); the signed "
                                               f"statement is {record.PROVENANCE}")
        return
    try:
        fields = [where for where, _ in differences(json.loads(statement), json.loads(payload))]
    except ValueError:
        fields = []
    named = f": {', '.join(fields[:5])}{' ...' if len(fields) > 5 else ''} differ" if fields else ""
    yield Check(what=what, ok=False, detail=f"the signed statement is not {record.PROVENANCE}{named} "
                                            f"({record.PROVENANCE} was changed after it was signed)")
