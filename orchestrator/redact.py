"""Keep secrets out of messages, logs and records."""

from __future__ import annotations

import re

_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def redact_url(url: str) -> str:
    """``https://user:token@host/x.git`` -> ``https://***@host/x.git``; other URLs unchanged.

    scp-like ``git@host:path`` has a user name but never a password, so it is kept.
    """
    return _USERINFO_RE.sub(r"\1***@", url)
