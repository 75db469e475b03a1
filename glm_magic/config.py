"""Settings for a request: endpoint, model, key, timeouts, retries.

Settings are resolved when a request is made, never at import, from (highest
first) explicit values (magic options, ``%config GlmMagics...``), the
environment (``GLM_BASE_URL``, ``GLM_MODEL``, the key variable named by
``api_key_env`` - ``RUNAPI_KEY`` by default - then ``GLM_API_KEY``) and the
built-in defaults. A key entered with ``%glm key`` is kept in this process only
(:func:`set_session_key`).

The key is wrapped in :class:`Secret`, whose ``repr`` and ``str`` never show it;
the only way to read it is :meth:`Secret.reveal`, called by the client when it
builds the ``Authorization`` header.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, MissingKeyError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_KEY_ENV",
    "DEFAULT_MODEL",
    "KeyRedactor",
    "Secret",
    "Settings",
    "clear_session_key",
    "is_loopback_url",
    "resolve_settings",
    "set_session_key",
    "shown_url",
    "without_keys",
]

from .defaults import DEFAULT_BASE_URL, DEFAULT_KEY_ENV, DEFAULT_MODEL, FALLBACK_KEY_ENV


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or pickles."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value (only for the ``Authorization`` header)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling (e.g. by a variable inspector or %store) must not carry the key.
        return (Secret, ("***",))


class KeyRedactor:
    """Masks given keys in text, in any case and any 12+ character run (``repr`` hides them).

    Used on replies (a model or proxy may echo the key) and on everything sent.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: list[Secret]) -> None:
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return "KeyRedactor(***)"

    def __call__(self, text: str) -> str:
        """``text`` with every key masked."""
        from .masking_shapes import mask_key

        for key in self._keys:
            text = mask_key(text, key.reveal())[0]
        return text


_session_key: Secret | None = None


def set_session_key(value: str) -> None:
    """Keep ``value`` as the API key for this process (``%glm key``)."""
    global _session_key
    value = value.strip()
    if not value:
        raise ConfigError("The key is empty; nothing was stored.")
    _session_key = Secret(value)


def clear_session_key() -> None:
    """Forget a key stored with :func:`set_session_key`."""
    global _session_key
    _session_key = None


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (such endpoints need no key)."""
    host = (urlsplit(url).hostname or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    """``url`` as it may be shown: without ``user:password@`` (credentials stay private)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


def _check_url(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` is an http(s) URL httpx can send to."""
    shown = shown_url(url)
    hint = "set it with %config GlmMagics.base_url = 'https://host/v1' or GLM_BASE_URL."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"base URL {shown!r} is not valid ({exc}); {hint}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {shown!r} is not an http(s) URL; {hint}")
    if port == 0:
        raise ConfigError(f"base URL {shown!r} has port 0; {hint}")
    host = parts.hostname
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            host.encode("idna")
        except UnicodeError:
            raise ConfigError(f"base URL {shown!r} has an invalid host name; {hint}") from None


@dataclass(frozen=True)
class Settings:
    """Everything the client needs for one request.

    Timeouts are seconds. ``read_timeout`` is the longest wait for the next
    bytes, including the first token of a reply to a 200K-token prompt, so it
    is long by default (httpx's 5 s would cut such replies).
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: Secret | None = field(default=None, repr=False)
    api_key_env: str = DEFAULT_KEY_ENV
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    write_timeout: float = 60.0
    max_retries: int = 3
    retry_max_wait: float = 20.0
    temperature: float | None = None
    max_tokens: int | None = None
    thinking: bool | None = None
    #: Ask for usage in streams (``stream_options.include_usage``). ``None``: ask, unless the
    #: endpoint is Z.ai, BigModel or RunAPI, which send usage in every stream anyway.
    stream_usage: bool | None = None
    #: Requests in flight to this endpoint at once, over every surface (``None``: no limit).
    max_concurrent: int | None = 2
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _check_url(self.base_url)
        if not self.model.strip():
            raise ConfigError("the model id is empty; set GlmMagics.model or use -m MODEL.")
        for name in ("connect_timeout", "read_timeout", "write_timeout", "retry_max_wait"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}.")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(
                f"max_concurrent must be 1 or more (or None), not {self.max_concurrent!r}."
            )
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, not {self.max_retries!r}.")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2, not {self.temperature!r}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"max tokens must be at least 1, not {self.max_tokens!r}.")

    @property
    def needs_key(self) -> bool:
        """Whether requests need a key (loopback endpoints do not)."""
        return not is_loopback_url(self.base_url)

    def require_key(self) -> Secret | None:
        """Return the key, or raise :class:`MissingKeyError` when one is needed."""
        if self.api_key is None and self.needs_key:
            raise MissingKeyError(missing_key_message(self.api_key_env))
        return self.api_key

    def key_to_mask(self) -> str | None:
        """The key's text, only to mask it in what leaves the machine (``None``: no key)."""
        return self.api_key.reveal() if self.api_key is not None else None

    def keys_to_mask(self, environ: Mapping[str, str] | None = None) -> list[Secret]:
        """Every key never to send or show: the configured key and the key variables' values.

        A key entered with ``%glm key`` may differ from ``$RUNAPI_KEY``; both
        stay private, so ``{os.environ["RUNAPI_KEY"]}`` in a prompt is masked too.
        They stay wrapped, so no caller's local variable holds a key's text.
        """
        env = os.environ if environ is None else environ
        found = [self.api_key] if self.api_key is not None else []
        for name in dict.fromkeys((self.api_key_env, DEFAULT_KEY_ENV, FALLBACK_KEY_ENV)):
            value = Secret(env.get(name, "").strip())
            if value.reveal() and value not in found:
                found.append(value)
        return found

    def redactor(self) -> KeyRedactor:
        """A :class:`KeyRedactor` for :meth:`keys_to_mask` (read now)."""
        return KeyRedactor(self.keys_to_mask())

    @property
    def shown_base_url(self) -> str:
        """The base URL without any ``user:password@`` in it, for display."""
        return shown_url(self.base_url)

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def missing_key_message(key_env: str) -> str:
    """The one line telling the user how to provide a key."""
    return (
        f"no API key. Run `%glm key` to enter one with a hidden prompt, or set the "
        f"{key_env} environment variable before starting Jupyter "
        "(a local endpoint such as GLM_BASE_URL=http://127.0.0.1:8000/v1 needs none)."
    )


def _env_float(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number.") from exc


def find_key(key_env: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    """The key: from ``%glm key``, else ``$key_env``, else ``$GLM_API_KEY``."""
    if _session_key is not None:
        return _session_key
    env = os.environ if environ is None else environ
    for name in (key_env, FALLBACK_KEY_ENV):
        value = env.get(name, "").strip()
        if value:
            return Secret(value)
    return None


def resolve_settings(
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Build :class:`Settings` from explicit values, the environment and defaults.

    ``None`` means "not given": the environment or the default applies.
    ``overrides`` are other :class:`Settings` fields; ``None`` values are skipped.
    """
    env = os.environ if environ is None else environ
    key_env = api_key_env or DEFAULT_KEY_ENV
    values: dict[str, object] = {
        "base_url": (base_url or env.get("GLM_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
        "model": model or env.get("GLM_MODEL") or DEFAULT_MODEL,
        "api_key_env": key_env,
        "api_key": find_key(key_env, env),
    }
    timeout = _env_float(env, "GLM_READ_TIMEOUT")
    if timeout is not None:
        values["read_timeout"] = timeout
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


def without_keys(messages: Sequence[Mapping[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """``messages`` with the keys masked in every text: never sent or shown, whatever path."""
    redact = settings.redactor()
    return [
        {**m, "content": redact(m["content"])} if isinstance(m.get("content"), str) else dict(m)
        for m in messages
    ]
