"""Keep secrets out of messages, logs and records: the one place that knows how."""

from __future__ import annotations

import re

# scheme://userinfo@ anywhere in a text; scp-like git@host:path has no password, kept.
_USERINFO = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def redact(text: str, *, mask: str = "") -> str:
    """``text`` with the userinfo (``user:token@``) of every URL in it removed, or
    replaced by ``mask`` (e.g. ``"***@"``, to show that credentials were there)."""
    return _USERINFO.sub(lambda m: m.group("scheme") + mask, text)


def redact_url(url: str) -> str:
    """``https://user:token@host/x.git`` -> ``https://host/x.git``."""
    return redact(url)
