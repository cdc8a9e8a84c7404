"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol.md and envelope.md).

An envelope carries a payload, its type, and signatures over the *pre-authentication
encoding* of both: ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``,
lengths in bytes as ASCII decimal. Signing the encoding rather than the payload binds
the type to the bytes, so a payload cannot be presented as another type. The JSON form
is ``{"payload": b64, "payloadType": ..., "signatures": [{"keyid": ..., "sig": b64}]}``;
``*.intoto.jsonl`` files (as SLSA's generators write them) hold one envelope per line.

Pure: bytes in, bytes out. Keys live in ``orchestrator.signing``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

# The payload type of an in-toto statement (in-toto attestation spec, envelope.md).
IN_TOTO = "application/vnd.in-toto+json"
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


class EnvelopeError(ValueError):
    """Bytes that are not one DSSE envelope; ``str()`` says what is wrong with them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    keyid: str  # a hint only: the DSSE spec leaves it unauthenticated
    sig: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding that every signature of an envelope covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def encode(envelope: Envelope) -> bytes:
    """One line of JSON (and its newline): standard base64 with padding, as the spec's producers write."""
    document = {
        "payload": base64.b64encode(envelope.payload).decode("ascii"),
        "payloadType": envelope.payload_type,
        "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                       for s in envelope.signatures],
    }
    return (json.dumps(document, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> Envelope:
    """The envelope in one JSON line. Base64 is read as verifiers must take it: standard
    or URL-safe alphabet, with or without padding. EnvelopeError says what is wrong."""
    try:
        document = json.loads(line)
    except (UnicodeDecodeError, ValueError) as e:
        raise EnvelopeError(f"not JSON ({e})") from None
    if not isinstance(document, dict):
        raise EnvelopeError("not a JSON object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise EnvelopeError("payloadType is missing or not a string")
    payload = _b64(document.get("payload"), "payload")
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("signatures is missing, empty or not an array")
    return Envelope(payload=payload, payload_type=payload_type,
                    signatures=tuple(_signature(item, i) for i, item in enumerate(signatures)))


def _signature(item: Any, index: int) -> Signature:
    if not isinstance(item, dict):
        raise EnvelopeError(f"signatures[{index}] is not an object")
    keyid = item.get("keyid", "")
    if not isinstance(keyid, str):
        raise EnvelopeError(f"signatures[{index}].keyid is not a string")
    return Signature(keyid=keyid, sig=_b64(item.get("sig"), f"signatures[{index}].sig"))


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _BASE64.fullmatch(value):
        raise EnvelopeError(f"{where} is missing or not base64")
    text = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as e:
        raise EnvelopeError(f"{where} is not base64 ({e})") from None
