"""Docker image references, parsed the way the Docker engine parses them.

The grammar is distribution/reference's (``ParseNormalizedNamed``). The part that
catches people out is how the first path component is read: it names a registry
only when it contains '.' or ':' or is ``localhost``; anything else is part of the
image name, and names are lower case. So ``UPPER/x:v1`` is no registry ``UPPER``
but an invalid name, which the engine refuses only after the build has run;
checking here refuses it before any work. (Engines since 2023 also read an
upper-case first component as a registry; refusing it suits both.)
"""

from __future__ import annotations

import re

from orchestrator.gitinput import shown

# A path component of the name: lower-case alphanumerics joined by '.', '_', '__' or dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
# A first component Docker reads as a registry: a dotted host, host:port, or localhost.
_REGISTRY = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})+(?::[0-9]+)?|{_HOST_PART}:[0-9]+|localhost)"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"

# The whole grammar for a reference without a digest, anchored with \Z (a '$' would
# let "x:v1\n" through). A first component that looks like a registry but is no valid
# host may still be a valid name component ("a_b.c/x"): the engine accepts that too.
IMAGE_REF_RE = re.compile(
    rf"\A(?:(?:{_REGISTRY}|{_COMPONENT})/{_COMPONENT}(?:/{_COMPONENT})*|{_COMPONENT})(?::{_TAG})?\Z"
)
_COMPONENT_RE = re.compile(_COMPONENT)
_REGISTRY_RE = re.compile(_REGISTRY)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")
NAME_MAX = 255  # distribution/reference's NameTotalLengthMax, of the normalized name
_DEFAULT_REGISTRY = "docker.io/"


def problem(ref: str, *, digest: bool = False) -> str | None:
    """Why the engine would refuse ``ref`` as an image reference, or ``None``.

    ``digest``: also accept ``name[:tag]@algorithm:hex`` (an image to run or pull;
    never a tag to build).
    """
    if not ref:
        return "it is empty"
    if len(ref) > 2 * NAME_MAX:
        return f"it is {len(ref)} characters long; Docker allows a name of {NAME_MAX}"
    if _IMAGE_ID_RE.fullmatch(ref):
        return "64 hex digits are an image id, not a name"
    named, at, found_digest = ref.partition("@")
    if at and not digest:
        return "a digest ('@...') cannot be a build tag"
    if at and not _DIGEST_RE.fullmatch(found_digest):
        return f"digest {shown(found_digest)} is not algorithm:hex"
    if not IMAGE_REF_RE.fullmatch(named):
        return _why_not(named)
    name = named
    colon = named.rfind(":")
    if colon > named.rfind("/"):
        name = named[:colon]
    first, slash, _ = name.partition("/")
    if not (slash and _REGISTRY_RE.fullmatch(first)):
        name = _DEFAULT_REGISTRY + ("" if slash else "library/") + name
    if len(name) > NAME_MAX:
        return f"the name is {len(name)} characters long as Docker counts it ({name[:20]}...); it allows {NAME_MAX}"
    return None


def _why_not(ref: str) -> str:
    """The most specific reason ``ref`` (no digest) does not fit the grammar."""
    name, tag = ref, None
    colon = ref.rfind(":")
    if colon > ref.rfind("/"):
        name, tag = ref[:colon], ref[colon + 1 :]
    parts = name.split("/")
    first = parts[0]
    registry = len(parts) > 1 and (any(c in first for c in ".:") or first == "localhost")
    if registry and not (_REGISTRY_RE.fullmatch(first) or _COMPONENT_RE.fullmatch(first)):
        return f"registry {shown(first)} is not a host name with an optional :port"
    for i, component in enumerate(parts):
        if (i == 0 and registry) or _COMPONENT_RE.fullmatch(component):
            continue
        if i == 0 and len(parts) > 1 and component != component.lower():
            return (f"{shown(component)} is not a registry (it has no '.' or ':' and is not localhost), so it "
                    "is part of the image name, and names are lower case")
        return f"name part {shown(component)} must be lower-case letters and digits, joined by '.', '_', '__' or '-'"
    if tag is not None and not _TAG_RE.fullmatch(tag):
        return f"tag {shown(tag)} must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    return "it does not follow Docker's reference grammar"


def is_registry_host(host: str) -> bool:
    """``host`` names a registry (has a '.' or a port, or is localhost), as docker decides."""
    return _REGISTRY_RE.fullmatch(host) is not None


def registry_problem(prefix: str) -> str | None:
    """Why ``prefix`` (``defaults.registry``) cannot start image names, or ``None``.

    A prefix is empty, or a registry and/or namespace ending in '/' (``quay.io/``,
    ``localhost:5000/team/``, ``calico/``) such that prefix + name is a valid name.
    """
    if not prefix:
        return None
    if "://" in prefix:
        return "it has a scheme; write the host alone (quay.io/, localhost:5000/)"
    if not prefix.endswith("/"):
        return "it must end with '/'"
    return problem(prefix + "x")


def split_registry(ref: str) -> tuple[str | None, str]:
    """(registry host, the rest) of ``ref``; None when it names no registry (Docker Hub).

    Docker's rule: the first component is a registry when it has a '.' or a ':' or is
    ``localhost`` (``calico/node`` is on Docker Hub, ``quay.io/calico/node`` is not).
    """
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, ref


def registry_of(ref: str) -> str:
    """The registry host ``ref`` is pushed to and pulled from (``docker.io`` for Docker Hub)."""
    return split_registry(ref)[0] or "docker.io"


def familiar(ref: str) -> str:
    """``ref`` as the engine lists it among an image's RepoTags: Docker Hub's
    ``docker.io/library/`` dropped, ``:latest`` added when no tag is given."""
    host, rest = split_registry(ref)
    if host in ("docker.io", "index.docker.io"):
        ref = rest.removeprefix("library/") if rest.count("/") == 1 else rest
    return ref if "@" in ref or split_tag(ref)[1] is not None else f"{ref}:latest"


def split_tag(ref: str) -> tuple[str, str | None]:
    """``host:5000/a/b:1`` -> (``host:5000/a/b``, ``1``): a ':' before the last '/' is a port."""
    head, slash, last = ref.rpartition("/")
    name, colon, tag = last.partition(":")
    return (head + slash + name, tag) if colon else (ref, None)
