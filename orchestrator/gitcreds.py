"""Credentials in a manifest URL reach git through its environment, never its argv.

Every user of the machine can read every process's argv (``ps``, /proc/<pid>/cmdline);
only the owner (and root) can read its environment. So the userinfo of a URL
(``https://user:token@host/x.git``) is taken out of the URL git gets on its command
line and handed to git as a credential helper configured through ``GIT_CONFIG_*``
variables, which reads the values from two more variables.

Why a helper and not ``http.extraHeader`` (the other way to pass a token through the
environment): git sends an extra header with *every* request of the process, also to
another host once a redirect has moved the repository there. Credentials are asked
for per protocol, host and port, and git forgets what it had when a redirect changes
the host, so a helper scoped to the URL's own ``scheme://host:port`` never hands the
token to anyone else. It runs only after the server asks (HTTP 401), as git's own
credential handling always does. The helper list is reset first, so a user's
``credential.helper store`` never writes the token to ``~/.git-credentials``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from orchestrator.errors import InputError
from orchestrator.redact import redact

USER_VARIABLE = "ORCHESTRATOR_GIT_USERNAME"
PASSWORD_VARIABLE = "ORCHESTRATOR_GIT_PASSWORD"

# A credential helper that answers "get" with the two variables. printf is a builtin
# of every POSIX shell git may run it with (dash, bash, busybox ash): the values never
# become the argv of a process.
_HELPER = (
    '!f() { test "$1" = get || return 0; '
    f'printf "username=%s\\npassword=%s\\n" "${USER_VARIABLE}" "${PASSWORD_VARIABLE}"; }}; f'
)
_WITH_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#]*)@(?P<rest>.*)", re.S)


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """A URL split for git: what goes on its command line, and what in its environment."""

    url: str  # no password anywhere, and no user name for http(s)
    env: Mapping[str, str] = field(default_factory=dict)


def remote(url: str, name: str) -> Remote:
    """Split the credentials off ``url`` (of repo ``name``).

    https/http: user and password (percent-decoded, as git would) go to the helper; a
    user alone (``https://token@host``, as GitHub accepts tokens) is sent with an empty
    password. ssh keeps its user, which is no secret, and drops a password (ssh never
    reads one from a URL). Other schemes (git, file) never use userinfo: it is dropped.
    URLs without userinfo, and scp-like ``user@host:path``, are returned unchanged.
    """
    match = _WITH_USERINFO.fullmatch(url)
    if match is None:
        return Remote(url=url)
    scheme, userinfo, rest = match["scheme"].lower(), match["userinfo"], match["rest"]
    user, has_password, password = userinfo.partition(":")
    if scheme == "ssh":
        return Remote(url=f"{scheme}://{user}@{rest}" if user else f"{scheme}://{rest}")
    bare = f"{scheme}://{rest}"
    if scheme not in ("https", "http") or not userinfo:
        return Remote(url=bare)
    user, password = unquote(user), unquote(password) if has_password else ""
    if any(c in user + password for c in "\x00\r\n"):
        raise InputError(f"{name}: the credentials in {redact(url, mask='***@')} contain a line break or NUL, "
                         "which git cannot pass on", hint="percent-encode only printable characters")
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    key = f"credential.{scheme}://{host}.helper"
    return Remote(url=bare, env={
        "GIT_CONFIG_COUNT": "2",
        # An empty value empties the helper list collected so far (global, system, repo).
        "GIT_CONFIG_KEY_0": key, "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": key, "GIT_CONFIG_VALUE_1": _HELPER,
        USER_VARIABLE: user, PASSWORD_VARIABLE: password,
    })
