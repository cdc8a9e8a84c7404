"""The one answer to "may git be handed this ref or this URL?".

Both the manifest validator (``schema``) and the sources layer (``sources._prepare``,
for mirror rewrites too) ask here, so a value can never pass validation and then be
refused, or worse accepted, at fetch time. Each check returns ``None`` when the value
is fine, else a ``Problem``: the sentence saying what is wrong and a hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.redact import redact_url

URL_SCHEMES = ("https", "ssh", "git", "file")


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """Why a value is refused (``what``) and what to do instead (``hint``)."""

    what: str
    hint: str | None = None


# git check-ref-format, rule by rule (its numbering), each with the words we say.
_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")  # 4, 5, 10
_REF_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\A/"), "it begins with '/'"),  # 6
    (re.compile(r"/\Z"), "it ends with '/'"),  # 6
    (re.compile(r"//"), "it contains '//'"),  # 6
    (re.compile(r"(?:\A|/)\."), "a part begins with '.'"),  # 1
    (re.compile(r"\.lock(?:/|\Z)"), "a part ends with '.lock'"),  # 1
    (re.compile(r"\.\."), "it contains '..'"),  # 3
    (re.compile(r"\.\Z"), "it ends with '.'"),  # 7
    (re.compile(r"@\{"), "it contains '@{'"),  # 8
    (re.compile(r"\A@\Z"), "it is '@'"),  # 9
)


# A full commit id, as git prints it and as pins are compared: the one pattern for it.
COMMIT = re.compile(r"[0-9a-f]{40}")
ANY_CASE_COMMIT = re.compile(r"[0-9a-fA-F]{40}")


def ref_problem(ref: str) -> Problem | None:
    """Why ``ref`` is not a tag, branch or commit name git accepts and that is safe.

    The rules are git check-ref-format's for ``refs/tags/<ref>`` and
    ``refs/heads/<ref>`` (the ref may have several '/'-separated parts), plus one of
    ours: no leading '-', which git would read as an option, and a 40-hex commit id
    in lower case (the form git prints, and the one pins are compared in).
    """
    if not ref:
        return Problem(what="must not be empty", hint="use a tag, a branch or a full 40-hex commit")
    if ref.startswith("-"):
        return Problem(what=f"ref {shown(ref)} begins with '-'",
                       hint="git would read it as an option; refs never start with '-'")
    why: str | None = None
    if bad := _REF_CHARS.search(ref):
        char = bad.group()
        why = "it contains a space or control character" if char <= " " or char == "\x7f" else f"it contains {char!r}"
    else:
        why = next((text for rule, text in _REF_RULES if rule.search(ref)), None)
    if why is None and ANY_CASE_COMMIT.fullmatch(ref) and ref != ref.lower():
        return Problem(what=f"ref {shown(ref)} is a commit id with upper-case hex", hint="write it in lower case")
    if why is None:
        return None
    return Problem(what=f"{shown(ref)} is not a valid git ref name: {why}",
                   hint="use a tag, a branch or a full 40-hex commit")


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# git's scp-like ssh syntax, user@host:path. Without "user@", git would read
# "host:path" the same way, but also "c:/x" on some systems: we ask for the user.
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+")
# git reads "<name>::<address>" (before any '/') as "run git-remote-<name>".
_HELPER = re.compile(r"[^/]*::")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url_problem(url: str) -> Problem | None:
    """Why git must not be given ``url``: only https, ssh (also user@host:path), git
    and file URLs pass; remote helpers (``ext::``, ``fd::``), options and plain paths
    do not. The problem never shows the URL's credentials."""
    schemes = ", ".join(URL_SCHEMES)
    safe = shown(redact_url(url))
    if not url or not url.strip():
        return Problem(what="the URL is empty", hint=f"use a URL with one of the schemes {schemes}")
    if _CONTROL.search(url):
        return Problem(what=f"URL {safe} contains a control character", hint="remove it")
    if url != url.strip():
        return Problem(what=f"URL {safe} begins or ends with white space", hint="remove it")
    if url.startswith("-"):
        return Problem(what=f"URL {safe} begins with '-'", hint="git would read it as an option")
    if _HELPER.match(url) or url.split(":", 1)[0] in ("ext", "fd"):
        helper = url.split(":", 1)[0]
        return Problem(what=f"transport {helper!r} is refused: it runs a program", hint=f"use one of {schemes}")
    if match := _SCHEME.match(url):
        scheme = match.group(1).lower()
        if scheme not in URL_SCHEMES:
            return Problem(what=f"URL scheme {scheme!r} is not allowed", hint=f"use one of {schemes}")
        host = url[match.end():].split("/", 1)[0].rpartition("@")[2]
        if scheme != "file" and not host:
            return Problem(what=f"URL {safe} has no host", hint="write scheme://host/path")
        if host.startswith("-"):
            return Problem(what=f"URL {safe} has a host beginning with '-'", hint="ssh would read it as an option")
        return None
    if _SCP_LIKE.fullmatch(url):
        if url.split("@", 1)[1].startswith("-"):
            return Problem(what=f"URL {safe} has a host beginning with '-'", hint="ssh would read it as an option")
        return None
    if url.startswith(("/", ".", "~")):
        return Problem(what=f"URL {safe} is a plain path",
                       hint=f"write it as a file:// URL (file://{redact_url(url)}); plain paths ignore --depth")
    return Problem(what=f"{safe} is not a URL", hint=f"use a URL with one of the schemes {schemes}")


def shown(value: str, limit: int = 80) -> str:
    """``repr(value)``, cut short: a message must stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"
