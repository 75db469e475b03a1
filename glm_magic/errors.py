"""The one error tree of glm-magic.

Every failure the package reports is a :class:`GlmError`. Library exceptions
(httpx, json, OS errors) are mapped into this tree exactly once, at the client
boundary, with ``raise ... from exc``; everything above the client only ever
sees these classes. At the magic's edge a ``GlmError`` becomes one line of
text (:meth:`GlmError.one_line`), never a traceback.

::

    GlmError
    ├── ConfigError .................. bad settings (URL, numbers, model id)
    │   └── MissingKeyError .......... no API key for a non-loopback endpoint
    ├── APIError ..................... the server answered with an error body
    │   ├── AuthenticationError ...... 401, Z.ai codes 1000-1004
    │   ├── PermissionDeniedError .... 403
    │   ├── BadRequestError .......... other 400/404/413/422, codes 1210/1213/1214
    │   │   ├── ModelNotFoundError ... unknown model (Z.ai: 400 + code 1211)
    │   │   └── ContextTooLongError .. prompt over the window (400 + code 1261)
    │   ├── QuotaError ............... 402 credits, 1113 balance, 1304/1308/1310
    │   │                              quota, 1309/1311/1313 plan limits
    │   ├── RateLimitError ........... 429 with 1302/1303/1305 or no code (retryable)
    │   └── ServerError .............. 5xx (retryable)
    ├── TransportError ............... no usable HTTP exchange
    │   ├── ConnectError ............. could not connect (retryable)
    │   ├── TimeoutError ............. connect/read/write timeout (retryable)
    │   └── StreamBrokenError ........ stream cut, truncated (no [DONE]) or malformed
    ├── NotebookError ................ a notebook file cannot be read, changed or written
    │   └── NotebookChangedError ..... the file changed on disk since it was read
    ├── IncompleteReplyError ......... the model stopped for a reason other than "stop"
    │   ├── ContentFilteredError ..... finish_reason "sensitive", code 1301
    │   └── GenerationFailedError .... finish_reason "network_error"
    ├── StoppedError ................. the user stopped the reply (interrupt, Stop)
    ├── BudgetError .................. a request would pass the spending limit (not sent)
    ├── StoreError ................... the reply store cannot be used (corrupt, locked)
    └── ToolError .................... an agent's tool call cannot be done (told to the model)

Errors raised while a reply was streaming carry the text received so far in
:attr:`GlmError.partial`, so callers can keep it on screen. A reply cut by the
output token limit (``length``) is not an error: it comes back as a
:class:`~glm_magic.reply.Reply` with ``truncated`` set and a one-line ``note``.

No message in this tree ever contains an API key: the client passes every
server-supplied string through :func:`redact` before building an error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .masking_names import SecretText
    from .reply import Reply

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "ConfigError",
    "ConnectError",
    "ContentFilteredError",
    "ContextTooLongError",
    "GenerationFailedError",
    "GlmError",
    "IncompleteReplyError",
    "MissingKeyError",
    "ModelNotFoundError",
    "NotebookChangedError",
    "NotebookError",
    "PermissionDeniedError",
    "QuotaError",
    "RateLimitError",
    "ServerError",
    "StoppedError",
    "StoreError",
    "StreamBrokenError",
    "TimeoutError",
    "ToolError",
    "TransportError",
    "one_line",
    "redact",
]

# Token shapes that must never leave through an error message even when we do
# not know the key (a proxy may echo a different credential back).
_TOKEN_PATTERNS = re.compile(
    r"(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"
    r"|Bearer\s+[A-Za-z0-9._\-]{8,}"
    r"|[0-9a-f]{32}\.[A-Za-z0-9]{16}"  # Z.ai key shape: <32 hex>.<secret>
)


def redact(text: str, *secrets: SecretText) -> str:
    """Return ``text`` with every given secret and every token-like string masked.

    A secret is found in any letter case, and so is any run of 12 or more of
    its characters (a server may echo a key upper-cased or cut short).
    """
    from .masking_shapes import mask_key

    for secret in secrets:
        value = secret if isinstance(secret, str) or secret is None else secret.reveal()
        if value:
            text = mask_key(text, value)[0]
    return _TOKEN_PATTERNS.sub("***", text)


class GlmError(Exception):
    """Base of every error glm-magic raises.

    ``message`` is complete on its own: it names what happened and, where the
    user can act, what to do. ``partial`` holds the reply received before the
    failure (``None`` when nothing arrived).
    """

    #: True when repeating the same request may succeed (used by retries).
    retryable: ClassVar[bool] = False
    #: A short label for the kind of failure, shown before the message.
    label: ClassVar[str] = "Error"

    def __init__(self, message: str, *, partial: Reply | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial

    def _text(self) -> str:
        # The message on one line, without the label when the server's words
        # already start with it ("Authentication failed: invalid api key").
        text = " ".join(self.message.split())
        if text.lower().startswith(self.label.lower()):
            text = text[len(self.label) :].lstrip(" :-") or text
        return text

    def one_line(self) -> str:
        """The error as one line for display: ``"<label>: <message>"``."""
        return f"{self.label}: {self._text()}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting a traceback: a failed request
        # shows as one red line in the cell, and the cell still counts as failed.
        return [f"\x1b[0;31m{self.label}:\x1b[0m {self._text()}"]


class ConfigError(GlmError):
    """A setting is missing or invalid."""

    label = "Configuration error"


class MissingKeyError(ConfigError):
    """No API key was found for an endpoint that needs one."""

    label = "Missing API key"


class APIError(GlmError):
    """The server answered with an HTTP error status.

    Attributes keep the pieces apart for programs: ``status`` (HTTP status),
    ``code`` (the provider's error code, a string, or ``None``),
    ``server_message`` (the server's own words, redacted), ``request_id`` and
    ``retry_after`` (seconds, from ``Retry-After``, or ``None``).
    """

    label = "API error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        server_message: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        partial: Reply | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status = status
        self.code = code
        self.server_message = server_message
        self.request_id = request_id
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """The key was refused (HTTP 401)."""

    label = "Authentication failed"


class PermissionDeniedError(APIError):
    """The key may not use this resource (HTTP 403)."""

    label = "Permission denied"


class BadRequestError(APIError):
    """The server rejected the request as invalid."""

    label = "Bad request"


class ModelNotFoundError(BadRequestError):
    """The endpoint does not know the model id."""

    label = "Unknown model"


class ContextTooLongError(BadRequestError):
    """The prompt is longer than the model's context window."""

    label = "Context too long"


class QuotaError(APIError):
    """Out of credits, balance or quota; waiting a few seconds will not help."""

    label = "Quota or balance"


class RateLimitError(APIError):
    """Too many requests or the model is overloaded; retrying later helps."""

    retryable = True
    label = "Rate limited"


class ServerError(APIError):
    """The server failed (HTTP 5xx)."""

    retryable = True
    label = "Server error"


class TransportError(GlmError):
    """No usable HTTP exchange: connection, timeout or stream framing."""

    label = "Connection error"


class ConnectError(TransportError):
    """The endpoint could not be reached."""

    retryable = True
    label = "Cannot connect"


class TimeoutError(TransportError):
    """Connecting, sending or waiting for the next bytes took too long."""

    retryable = True
    label = "Timed out"


class StreamBrokenError(TransportError):
    """The reply stream ended early, was cut, or carried a malformed chunk."""

    label = "Stream broken"


class NotebookError(GlmError):
    """A notebook file cannot be found, parsed, edited or written."""

    label = "Notebook error"


class NotebookChangedError(NotebookError):
    """The notebook file changed on disk after it was read; writing would lose that change."""

    label = "Notebook changed"


class IncompleteReplyError(GlmError):
    """The model ended the reply for a reason other than a natural stop."""

    label = "Reply incomplete"

    def __init__(
        self, message: str, *, finish_reason: str | None = None, partial: Reply | None = None
    ) -> None:
        super().__init__(message, partial=partial)
        self.finish_reason = finish_reason


class ContentFilteredError(IncompleteReplyError):
    """The provider's content filter blocked the input or the output."""

    label = "Content filtered"


class GenerationFailedError(IncompleteReplyError):
    """The provider reported an inference failure (``network_error``)."""

    label = "Generation failed"


class StoppedError(GlmError):
    """The user stopped the reply (kernel interrupt or a Stop button)."""

    label = "Stopped"


class BudgetError(GlmError):
    """A request was refused before sending: its estimated cost would pass the limit."""

    label = "Budget"


class StoreError(GlmError):
    """The reply store cannot be read or written; requests go to the API without it."""

    label = "Reply store"


class ToolError(GlmError):
    """An agent's tool call cannot be done: unknown tool, bad arguments, a failing tool.

    It never reaches the user as an error: its one line goes back to the model as
    the call's result, and the task goes on.
    """

    label = "Error"


def one_line(exc: BaseException) -> str:
    """Any exception as the one line a surface shows (our errors say it their way)."""
    if isinstance(exc, GlmError):
        return exc.one_line()
    return " ".join(str(exc).split()) or type(exc).__name__
