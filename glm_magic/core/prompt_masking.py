"""Masking what the user writes before it is sent: ``{...}`` values and the panel's prompt.

Context has always been masked; these are the other ways text reaches a
request. Interpolated values and the panel's prompt go through the same
:func:`~glm_magic.masking.mask_secrets` as context when
``GlmMagics.mask_secrets`` is on, and the keys (the configured one and the key
variables' values) are masked in every case: they are never sent or shown.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import Settings

__all__ = ["clean_text", "interpolate_masked"]


def clean_text(text: str, settings: Settings, *, mask: bool) -> tuple[str, int]:
    """``text`` masked as context is with ``mask``, else only the keys; and the count."""
    from ..masking import mask_secrets

    if mask:
        masked = mask_secrets(text, settings.keys_to_mask())
        return masked.text, masked.count
    redacted = settings.redactor()(text)
    return redacted, int(redacted != text)


def interpolate_masked(
    text: str, namespace: Mapping[str, object], settings: Settings, *, mask: bool
) -> tuple[str, int]:
    """Interpolate ``{...}`` with every value cleaned by :func:`clean_text`; and the count."""
    from ..interpolate import interpolate

    count = 0

    def clean(value: str) -> str:
        nonlocal count
        value, found = clean_text(value, settings, mask=mask)
        count += found
        return value

    return interpolate(text, namespace, clean=clean).text, count
