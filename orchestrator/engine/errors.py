"""What the container engine raises: one class per way a step can fail, each with its hint."""

from __future__ import annotations

import re
from typing import Literal

from orchestrator.errors import BuildError, Interrupted, TimedOut, tail
from orchestrator.imageref import registry_of

PushProblem = Literal["auth", "unreachable", "other"]
_AUTH = re.compile(r"unauthorized|authentication required|denied|no basic auth|forbidden", re.I)
_UNREACHABLE = re.compile(
    r"dial tcp|connection refused|no such host|i/o timeout|unreachable|tls: |x509: |HTTP response to HTTPS", re.I
)


class EngineError(BuildError):
    """A Docker operation failed. ``output`` (the step's log) is shown as an indented tail."""

    def __init__(self, message: str, *, hint: str | None = None, output: str = "") -> None:
        super().__init__(message, hint=hint)
        self.output = output

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  last output:\n{tail(self.output)}" if self.output.strip() else text


class ImageMissing(EngineError):
    """An image the step needs is not in the engine."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"image {ref!r} is not in the Docker engine",
            hint=f"build the artifact that makes it first, or get it with `docker pull {ref}` or `docker load`",
        )
        self.ref = ref


class ImageBuildFailed(EngineError):
    """``docker build`` reported an error, in the stream or as an API error."""

    def __init__(self, image: str, reason: str, *, output: str = "", hint: str | None = None) -> None:
        super().__init__(f"building image {image} failed: {reason}", hint=hint, output=output)
        self.image, self.reason = image, reason


class ContainerFailed(EngineError):
    """A command in a container exited with a non-zero code."""

    def __init__(self, command: str, image: str, exit_code: int, output: str) -> None:
        super().__init__(f"command `{command}` in image {image} exited with code {exit_code}", output=output)
        self.command, self.image, self.exit_code = command, image, exit_code


class DeadlineExceeded(EngineError, TimedOut):
    """A build or command ran past its deadline and was stopped."""

    def __init__(self, what: str, budget: float, output: str = "") -> None:
        super().__init__(
            f"{what} did not finish before its deadline ({budget:.1f}s after it started) and was stopped",
            hint="raise the step's timeout, or find out why it is slow or stuck",
            output=output,
        )
        self.what, self.budget = what, budget


class PushFailed(EngineError):
    """The registry refused a push (``problem="auth"``), could not be reached, or failed otherwise."""

    def __init__(self, ref: str, reason: str, problem: PushProblem, output: str = "") -> None:
        registry = registry_of(ref)
        hint = {
            "auth": f"{registry} refused the credentials: run `docker login {registry}`",
            "unreachable": f"the registry {registry} could not be reached: check its address and the network",
            "other": None,
        }[problem]
        super().__init__(f"pushing {ref} failed: {reason}", hint=hint, output=output)
        self.ref, self.reason, self.problem = ref, reason, problem


class Cancelled(Interrupted):
    """``Engine.cancel_all`` stopped this step (exit code 130)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was cancelled")
        self.what = what


def push_problem(reason: str) -> PushProblem:
    """Which kind of push failure the registry's words describe."""
    return "auth" if _AUTH.search(reason) else "unreachable" if _UNREACHABLE.search(reason) else "other"
