"""Issue 15 item 5, unit level: key warnings, URL credentials, redaction of echoed keys."""

from __future__ import annotations

import pytest

from glm_magic.client.chat import ChatClient, KeyAuth
from glm_magic.config import Secret, resolve_settings, shown_url
from glm_magic.errors import ConfigError
from glm_magic.events import TextDelta
from glm_magic.reply import ReplyBuilder
from glm_magic.safety import key_warnings, reset_warnings

KEY = "localproxy-Key-7f3a9c2e"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset_warnings()


def test_plain_http_to_another_host_warns_once_per_host() -> None:
    s = resolve_settings(base_url="http://llm.example.com/v1", environ={"GLM_API_KEY": KEY})
    first = key_warnings(s, {"GLM_API_KEY": KEY})
    assert len(first) == 1 and "plain HTTP" in first[0]
    assert key_warnings(s, {"GLM_API_KEY": KEY}) == []
    other = resolve_settings(base_url="http://llm2.example.com/v1", environ={"GLM_API_KEY": KEY})
    assert len(key_warnings(other, {"GLM_API_KEY": KEY})) == 1


def test_a_runapi_key_to_another_host_warns() -> None:
    env = {"RUNAPI_KEY": KEY}
    away = key_warnings(resolve_settings(base_url="https://api.z.ai/api/paas/v4", environ=env), env)
    assert len(away) == 1 and "not RunAPI" in away[0]
    for url in ("https://runapi.ai/v1", "https://eu.runapi.ai/v1", "http://127.0.0.1:8000/v1"):
        assert key_warnings(resolve_settings(base_url=url, environ=env), env) == []
    mine = {"GLM_API_KEY": KEY}  # a key for this endpoint, not RunAPI's
    assert key_warnings(resolve_settings(base_url="https://api.z.ai/v4", environ=mine), mine) == []


def test_credentials_in_the_base_url_are_hidden() -> None:
    url = "https://bob:s3cr3t@llm.example.com:8443/v1"
    assert shown_url(url) == "https://***@llm.example.com:8443/v1"
    s = resolve_settings(base_url=url, environ={})
    assert "s3cr3t" not in repr(ChatClient(s)) and "s3cr3t" not in s.shown_base_url
    with pytest.raises(ConfigError) as caught:
        resolve_settings(base_url="http://bob:s3cr3t@host:port/v1", environ={})
    assert "s3cr3t" not in caught.value.one_line()


def test_the_key_is_in_no_header_dict_or_repr() -> None:
    s = resolve_settings(base_url="https://runapi.ai/v1", environ={"RUNAPI_KEY": KEY})
    client = ChatClient(s)
    assert KEY not in repr(client._headers(s, stream=True))
    auth = KeyAuth(Secret(KEY))
    assert KEY not in repr(auth) and KEY not in repr(s.redactor())
    import httpx

    request = httpx.Request("POST", "https://runapi.ai/v1/chat/completions")
    assert next(auth.auth_flow(request)).headers["Authorization"] == f"Bearer {KEY}"


def test_a_reply_echoing_the_key_is_redacted_even_split_across_chunks() -> None:
    s = resolve_settings(base_url="https://runapi.ai/v1", environ={"RUNAPI_KEY": KEY})
    builder = ReplyBuilder("glm-5.1", redact=s.redactor())
    for piece in ("key: " + KEY[:7], KEY[7:] + " and ", KEY.upper()[2:16], " end"):
        builder.add(TextDelta(piece))
    assert builder.snapshot().text == "key: *** and *** end"
