"""Mapping HTTP error responses and finish reasons to the error tree (client/errormap.py)."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from glm_magic import errors
from glm_magic.client.errormap import error_fields, finish_error, map_http_error, retry_after
from glm_magic.reply import ReplyBuilder


def zai(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


@pytest.mark.parametrize(
    ("status", "body", "kind", "hint"),
    [
        (401, zai("1000", "bad key"), errors.AuthenticationError, "check the key in $MY_KEY"),
        (400, zai("1002", "token expired"), errors.AuthenticationError, "%glm key"),
        (403, zai("", "no access"), errors.PermissionDeniedError, "may not use this model"),
        (402, zai("", "pay"), errors.QuotaError, "retrying will not help"),
        (429, zai("1113", "arrears"), errors.QuotaError, "top up the account"),
        (429, zai("1302", "slow down"), errors.RateLimitError, "wait a little and retry"),
        (400, zai("1211", "no such model"), errors.ModelNotFoundError, "'glm-x'"),
        (400, zai("1261", "prompt too long"), errors.ContextTooLongError, "%glm reset"),
        (400, zai("1301", "unsafe"), errors.ContentFilteredError, "safety filter"),
        (500, "oops", errors.ServerError, "try again shortly"),
        (503, "<html><body>busy</body></html>", errors.ServerError, "(HTML error page)"),
        (404, "not here", errors.BadRequestError, "ends in /v1"),
        (422, zai("", "bad field"), errors.BadRequestError, "bad field (HTTP 422)"),
    ],
)
def test_status_and_code_give_the_kind_and_a_hint_on_one_line(
    status: int, body: str, kind: type[errors.GlmError], hint: str
) -> None:
    err = map_http_error(status, body, {}, model="glm-x", key_env="MY_KEY", request_id="req-1")
    assert type(err) is kind, err.one_line()
    assert hint in err.one_line() and "\n" not in err.one_line()
    assert err.retryable is (kind in (errors.RateLimitError, errors.ServerError))


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after({"retry-after": " 7 "}) == 7.0
    assert retry_after({"retry-after": "-3"}) == 0.0
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    wait = retry_after({"retry-after": later})
    assert wait is not None and 60 < wait <= 120
    err = map_http_error(429, zai("1302", "x"), {"retry-after": "12"}, model="m", key_env="K")
    assert isinstance(err, errors.RateLimitError) and err.retry_after == 12.0
    assert "retry in 12 s" in err.one_line()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (zai("1302", "slow"), ("1302", "slow")),
        ('{"error": {"code": null, "msg": "zhipu style"}}', (None, "zhipu style")),
        ('{"error": "just words"}', (None, "just words")),
        ('{"code": 500, "message": "flat"}', ("500", "flat")),
        ("<!doctype html><p>gateway</p>", (None, "(HTML error page)")),
        ("plain\n  words " + "x" * 400, (None, ("plain words " + "x" * 400)[:300])),
    ],
)
def test_error_fields_read_every_body_shape(body: str, fields: tuple[str | None, str]) -> None:
    assert error_fields(body) == fields


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("sensitive", errors.ContentFilteredError),
        ("content_filter", errors.ContentFilteredError),
        ("network_error", errors.GenerationFailedError),
        ("model_context_window_exceeded", errors.ContextTooLongError),
        ("length", None),
        ("stop", None),
    ],
)
def test_finish_reasons_that_mean_failure_keep_the_partial(
    reason: str, kind: type[errors.GlmError] | None
) -> None:
    partial = ReplyBuilder("m").snapshot()
    err = finish_error(reason, partial)
    if kind is None:
        assert err is None
    else:
        assert type(err) is kind and err.partial is partial
