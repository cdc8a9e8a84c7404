"""One parser for the parts of an image reference: registry, name, tag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.imageref import IMAGE_REF_RE, registry_of, split_registry, split_tag


@pytest.mark.parametrize(("ref", "registry", "rest", "name", "tag"), [
    ("calico/node:v3.2.0", None, "calico/node:v3.2.0", "calico/node", "v3.2.0"),
    ("quay.io/calico/node:v3.2.0", "quay.io", "calico/node:v3.2.0", "quay.io/calico/node", "v3.2.0"),
    ("localhost:5000/a/b", "localhost:5000", "a/b", "localhost:5000/a/b", None),
    ("localhost/a:1", "localhost", "a:1", "localhost/a", "1"),
    ("127.0.0.1:5000/x:latest", "127.0.0.1:5000", "x:latest", "127.0.0.1:5000/x", "latest"),
    ("busybox", None, "busybox", "busybox", None),
])
def test_the_parts_of_a_reference(ref: str, registry: str | None, rest: str, name: str, tag: str | None) -> None:
    assert split_registry(ref) == (registry, rest)
    assert registry_of(ref) == (registry or "docker.io")
    assert split_tag(ref) == (name, tag)


_PART = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
_HOST = st.one_of(st.none(), st.just("localhost"),
                  st.from_regex(r"[a-z]{1,5}\.[a-z]{2,3}(:[0-9]{1,5})?", fullmatch=True),
                  st.from_regex(r"[a-z]{1,5}:[0-9]{1,5}", fullmatch=True))


@given(host=_HOST, parts=st.lists(_PART, min_size=1, max_size=3),
       tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)))
def test_the_parts_put_back_together_are_the_reference(host: str | None, parts: list[str], tag: str | None) -> None:
    name = "/".join(parts) if host is None else f"{host}/{'/'.join(parts)}"
    if host is None and len(parts) > 1 and parts[0] == "localhost":
        return
    ref = name if tag is None else f"{name}:{tag}"
    assert IMAGE_REF_RE.fullmatch(ref)
    assert split_tag(ref) == (name, tag)
    registry, rest = split_registry(ref)
    assert registry == host
    assert (rest if registry is None else f"{registry}/{rest}") == ref
