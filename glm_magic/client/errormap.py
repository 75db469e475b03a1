"""Mapping HTTP error responses and finish reasons to the error tree.

Called only by :mod:`glm_magic.client.chat`, at the boundary, so every server
failure is classified in one place: Z.ai's numeric codes (sent as strings,
with 400 for an unknown model and 429 for an empty balance), RunAPI's 402,
OpenAI-style codes from proxies, ``Retry-After`` in seconds or as a date, and
non-JSON bodies (plain text, HTML error pages). Every message keeps the
server's own words, redacted, and never the key.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping, Sequence

from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    GenerationFailedError,
    GlmError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaError,
    RateLimitError,
    ServerError,
    TimeoutError,
    redact,
)
from ..masking_names import SecretText
from ..reply import Reply

__all__ = ["error_fields", "finish_error", "map_http_error", "retry_after"]

_AUTH_CODES = {"1000", "1001", "1002", "1003", "1004"}
_QUOTA_CODES = {"1113", "1304", "1308", "1309", "1310", "1311", "1313", "insufficient_quota"}
_RATE_CODES = {"1302", "1303", "1305", "rate_limit_exceeded"}
# Words that still say what happened when a proxy (LiteLLM) has replaced the provider's code
# with the HTTP status: Z.ai 1113/1304 (quota), 1211 (unknown model), 1301 (content filter).
_QUOTA_WORDS = ("quota", "insufficient balance", "recharge", "daily call limit", "next_flush_time")
_FILTER_WORDS = ("unsafe or sensitive content",)
_UNKNOWN_MODEL = re.compile(
    r"\b(?:unknown|invalid) model\b"  # LiteLLM: "Invalid model name", Z.ai: "Unknown Model"
    r"|\bmodel\b.*\b(?:not found|does not exist)\b"  # OpenAI, vLLM, Ollama
)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), if any."""
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_fields(body: str) -> tuple[str | None, str]:
    """Return (code, message) from a Z.ai / OpenAI / RunAPI error body, or raw text."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message") or err.get("msg") or ""
            return (str(code) if code not in (None, "") else None), str(message)
        if isinstance(err, str):
            return None, err
    text = " ".join(body.split())
    if text.lstrip().startswith("<"):
        return None, "(HTML error page)"
    return None, text[:300]


def map_http_error(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    model: str,
    key_env: str,
    secrets: Sequence[SecretText] = (),
    request_id: str | None = None,
) -> GlmError:
    """Map one HTTP error response to the error tree, with a one-line message.

    ``secrets`` (the key) are masked in the server's words, in any case and
    any 12+ character run of them.
    """
    code, server_message = error_fields(body)
    server_message = redact(server_message, *secrets)
    wait = retry_after(headers)
    low = server_message.lower()
    where = f"HTTP {status}" + (f", code {code}" if code else "")
    said = f"{server_message} ({where})" if server_message else f"({where})"
    cls: type[APIError]
    hint = ""
    if code == "1301" or any(w in low for w in _FILTER_WORDS):
        return ContentFilteredError(f"the provider's safety filter refused the request: {said}.")
    if status in (408, 504):
        # A gateway (LiteLLM's proxy, a load balancer) gave up waiting for the model.
        return TimeoutError(f"the server timed out waiting for the model: {said}; try again")
    if status == 401 or code in _AUTH_CODES:
        cls = AuthenticationError
        hint = f"check the key in ${key_env} (in a notebook: `%glm key`)"
    elif status == 403:
        cls, hint = PermissionDeniedError, "this key may not use this model or endpoint"
    elif (
        status == 402
        or code in _QUOTA_CODES
        or (status == 429 and any(w in low for w in _QUOTA_WORDS))
    ):
        cls, hint = QuotaError, "top up the account or check the plan; retrying will not help"
    elif status == 429 or code in _RATE_CODES:
        cls = RateLimitError
        hint = f"retry in {wait:.0f} s" if wait else "wait a little and retry"
    elif code == "1211" or (status in (400, 404) and _UNKNOWN_MODEL.search(low)):
        cls, hint = ModelNotFoundError, f"the endpoint does not know {model!r}; see `%glm models`"
    elif code in ("1261", "context_length_exceeded") or any(
        s in low for s in ("context length", "context window", "max length", "too many tokens")
    ):
        cls, hint = ContextTooLongError, "shorten the prompt or context, or `%glm reset`"
    elif status >= 500 or status == 408:
        cls, hint = ServerError, "the server failed; try again shortly"
    elif status == 404:
        cls, hint = BadRequestError, "check the base URL (it usually ends in /v1)"
    else:
        cls = BadRequestError
    message = said + (f"; {hint}" if hint else "")
    return cls(
        message,
        status=status,
        code=code,
        server_message=server_message,
        request_id=request_id,
        retry_after=wait,
    )


def finish_error(reason: str, partial: Reply) -> GlmError | None:
    """The error for a finish reason that means the reply failed, else ``None``.

    ``length`` is not one: a reply cut at the token limit is kept as a reply
    (:attr:`Reply.truncated`, with its note), so a notebook run goes on.
    """
    if reason in ("sensitive", "content_filter"):  # content_filter: OpenAI's name (LiteLLM)
        return ContentFilteredError(
            "the provider's safety filter stopped the reply", finish_reason=reason, partial=partial
        )
    if reason == "network_error":
        return GenerationFailedError(
            "the provider reported an inference failure (network_error); try again",
            finish_reason=reason,
            partial=partial,
        )
    if reason == "model_context_window_exceeded":
        return ContextTooLongError(
            "the model's context window filled up; shorten the prompt or `%glm reset`",
            partial=partial,
        )
    return None
