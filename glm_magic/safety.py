"""Warnings about where the API key goes: once per process, before the request.

Two sends deserve a word, though neither is refused (the user chose the URL):

- any key over plain ``http://`` to a host that is not this machine: anyone
  on the network path can read it;
- the key from ``$RUNAPI_KEY`` to a host that is not RunAPI's (``runapi.ai``
  or a subdomain) and not this machine: a RunAPI key handed to some other
  service, likely by a changed ``GLM_BASE_URL``.

:func:`key_warnings` returns each warning the first time it applies to a
host in this process (a kernel), and nothing after, so a notebook that talks
to one endpoint all day sees it once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from .config import DEFAULT_KEY_ENV, Settings, is_loopback_url

__all__ = ["RUNAPI_HOST", "key_warnings", "reset_warnings"]

#: RunAPI's host; its subdomains count as RunAPI too.
RUNAPI_HOST = "runapi.ai"

_given: set[tuple[str, str]] = set()
_lock = threading.Lock()


def key_warnings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The warnings about this request's key not yet given in this process (marked given)."""
    if settings.api_key is None or is_loopback_url(settings.base_url):
        return []
    parts = urlsplit(settings.base_url)
    host = (parts.hostname or "").lower()
    found: list[tuple[str, str]] = []
    if parts.scheme == "http":
        found.append(
            (
                "http",
                f"the API key is sent to {host} over plain HTTP, unencrypted: anyone on the "
                "network path can read it. Use an https:// base URL.",
            )
        )
    env = os.environ if environ is None else environ
    from_runapi = env.get(DEFAULT_KEY_ENV, "").strip() == settings.api_key.reveal()
    if from_runapi and host != RUNAPI_HOST and not host.endswith("." + RUNAPI_HOST):
        found.append(
            (
                "runapi",
                f"the key from ${DEFAULT_KEY_ENV} is sent to {host}, which is not RunAPI. "
                "If this endpoint has its own key, use `%glm key` or set "
                "GlmMagics.api_key_env (CLI: --key-env) to the variable holding it.",
            )
        )
    with _lock:
        new = [text for kind, text in found if (kind, host) not in _given]
        _given.update((kind, host) for kind, _ in found)
    return new


def reset_warnings() -> None:
    """Forget which warnings were given (tests)."""
    with _lock:
        _given.clear()
