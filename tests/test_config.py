"""Settings resolution, key handling and the model catalog."""

from __future__ import annotations

import pickle

import pytest

from glm_magic import config
from glm_magic.config import Secret, Settings, is_loopback_url, resolve_settings
from glm_magic.errors import ConfigError, MissingKeyError
from glm_magic.models import DEFAULT_MODEL_INFO, estimate_cost, model_info

KEY = "sk-test-THISISAFAKEKEY-1234567890"


def test_defaults_without_environment() -> None:
    s = resolve_settings(environ={})
    assert s.base_url == "https://runapi.ai/v1"
    assert s.model == "glm-5.1"
    assert s.api_key is None
    assert s.read_timeout >= 120  # a 200K prompt's first token can be slow
    assert s.connect_timeout <= 15


def test_environment_overrides_and_explicit_wins() -> None:
    env = {"GLM_BASE_URL": "http://127.0.0.1:9/v1/", "GLM_MODEL": "glm-4.7", "RUNAPI_KEY": KEY}
    s = resolve_settings(environ=env)
    assert s.base_url == "http://127.0.0.1:9/v1"
    assert s.model == "glm-4.7"
    assert s.api_key is not None and s.api_key.reveal() == KEY
    s2 = resolve_settings(environ=env, model="glm-4.5-air", base_url="https://x.example/v1")
    assert (s2.model, s2.base_url) == ("glm-4.5-air", "https://x.example/v1")


def test_key_lookup_order() -> None:
    env = {"MY_KEY": "from-my-key", "GLM_API_KEY": "from-glm"}
    assert resolve_settings(environ=env, api_key_env="MY_KEY").api_key == Secret("from-my-key")
    assert resolve_settings(environ={"GLM_API_KEY": "from-glm"}).api_key == Secret("from-glm")
    config.set_session_key("  from-prompt  ")
    assert resolve_settings(environ=env, api_key_env="MY_KEY").api_key == Secret("from-prompt")
    with pytest.raises(ConfigError):
        config.set_session_key("   ")


def test_key_never_in_repr_str_or_pickle() -> None:
    s = resolve_settings(environ={"RUNAPI_KEY": KEY})
    for text in (repr(s), str(s), repr(s.api_key), str(s.api_key), f"{s.api_key}"):
        assert KEY not in text
    assert KEY.encode() not in pickle.dumps(s)


def test_missing_key_is_one_line_with_the_fix() -> None:
    s = resolve_settings(environ={})
    with pytest.raises(MissingKeyError) as info:
        s.require_key()
    line = info.value.one_line()
    assert "\n" not in line
    assert "%glm key" in line and "RUNAPI_KEY" in line


@pytest.mark.parametrize(
    ("url", "loop"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:11434/v1", True),
        ("http://[::1]:4000/v1", True),
        ("http://127.3.2.1/v1", True),
        ("https://runapi.ai/v1", False),
        ("http://10.0.0.5:8000/v1", False),
    ],
)
def test_loopback_needs_no_key(url: str, loop: bool) -> None:
    assert is_loopback_url(url) is loop
    s = resolve_settings(environ={}, base_url=url)
    assert s.needs_key is not loop
    if loop:
        assert s.require_key() is None


@pytest.mark.parametrize(
    "bad",
    [
        {"base_url": "runapi.ai/v1"},
        {"read_timeout": 0},
        {"connect_timeout": float("nan")},
        {"max_retries": -1},
        {"temperature": 3.0},
        {"max_tokens": 0},
        {"model": " "},
    ],
)
def test_bad_values_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Settings(**bad)  # type: ignore[arg-type]


def test_catalog_and_unknown_models() -> None:
    info = model_info("GLM-4.7")
    assert info.known and info.context_window == 200_000
    assert model_info("zai/glm-4.5-air").context_window == 128_000
    unknown = model_info("llama3.1:8b")
    assert not unknown.known and unknown.id == "llama3.1:8b"
    assert unknown.context_window == DEFAULT_MODEL_INFO.context_window
    assert estimate_cost(unknown, 1000, 1000) is None
    cost = estimate_cost(model_info("glm-4.7"), 1_000_000, 1_000_000, cached_tokens=500_000)
    assert cost == pytest.approx(0.5 * 0.60 + 0.5 * 0.11 + 2.20)
