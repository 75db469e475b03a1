"""``%glm`` sub-commands (ipython/commands.py) on an in-process shell with the extension loaded.

Replies come from the bundled endpoint over loopback; without a kernel the
magic prints them as a terminal would. Kernel behaviour is in tests/kernel.
"""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from glm_magic.testing import EndpointServer

from .conftest import PLAIN_KEY
from .helpers import clear_glm_env


@pytest.fixture
def glm(ipshell: Any, fresh_endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    clear_glm_env(monkeypatch, GLM_BASE_URL=fresh_endpoint.base_url, RUNAPI_KEY=PLAIN_KEY)
    ipshell.run_line_magic("load_ext", "glm_magic")
    return ipshell


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_history_then_reset(glm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    glm.run_line_magic("glm", "history")
    assert out(capsys) == "The conversation is empty.\n"
    glm.run_cell_magic("glm", "-m glm-4.7", "What is a list?")
    answer = glm.user_ns["_glm"]
    out(capsys)
    glm.run_line_magic("glm", "history")
    shown = out(capsys).splitlines()
    assert shown[0] == "[1] you: What is a list?"
    assert shown[1].startswith("[1] glm-4.7: ") and " ".join(answer.text.split())[:40] in shown[1]
    glm.run_line_magic("glm", "reset")
    assert out(capsys) == "Conversation reset (1 turn forgotten).\n"
    glm.run_line_magic("glm", "history")
    assert out(capsys) == "The conversation is empty.\n"


def test_config_shows_the_settings_and_never_the_key(
    glm: Any, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    glm.run_line_magic("config", "GlmMagics.max_tokens = 321")
    glm.run_line_magic("glm", "config")
    shown = out(capsys)
    assert f"base_url        {fresh_endpoint.base_url}" in shown
    assert "api key         set\n" in shown and "max_tokens      321\n" in shown
    assert "conversation    0 turns" in shown and PLAIN_KEY not in shown


@pytest.mark.parametrize("command", ["reset now", "history 3", "config all", "models x"])
def test_sub_commands_without_arguments_refuse_them(glm: Any, command: str) -> None:
    name = command.split()[0]
    with pytest.raises(UsageError, match=f"usage: %glm {name}$"):
        glm.run_line_magic("glm", command)


def test_a_key_on_the_line_is_refused_and_not_echoed(glm: Any) -> None:
    with pytest.raises(UsageError) as caught:
        glm.run_line_magic("glm", "key sk-typed-in-the-cell-1234567890")
    assert "sk-typed" not in str(caught.value) and "hidden" in str(caught.value)


def test_key_reads_a_hidden_prompt(
    glm: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNAPI_KEY")
    glm.run_line_magic("config", "GlmMagics.base_url = 'https://api.z.ai/api/paas/v4'")
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or PLAIN_KEY)
    glm.run_line_magic("glm", "key")
    assert asked == ["API key for https://api.z.ai/api/paas/v4 (hidden, kept for this kernel): "]
    glm.run_line_magic("glm", "config")
    shown = out(capsys)
    assert "Key stored for this kernel session only" in shown and "api key         set" in shown
    assert PLAIN_KEY not in shown


def test_models_joins_the_endpoints_list_with_the_catalog(glm: Any) -> None:
    from IPython.core.displaypub import CapturingDisplayPublisher

    glm.display_pub = CapturingDisplayPublisher()
    glm.run_line_magic("glm", "models")
    (shown,) = glm.display_pub.outputs
    md = shown["data"]["text/markdown"]
    assert md.startswith("| model | context |") and "| glm-4.7 | 200K |" in md
    assert "$" not in md.replace("\\$", ""), "every $ escaped, so no price pairs up as math"
    assert "glm-4.7" in shown["data"]["text/plain"]


SUB_COMMANDS = [
    "key",
    "reset",
    "history",
    "models",
    "config",
    "cost",
    "explain",
    "fix",
    "insert",
    "panel",
    "buttons",
    "bridge",
    "agent",
]


def test_help_lists_every_sub_command(glm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from glm_magic.ipython.commands import COMMANDS, handler

    assert list(COMMANDS) == SUB_COMMANDS and all(handler(name) for name in SUB_COMMANDS)
    glm.run_line_magic("glm", "help")
    shown = out(capsys)
    assert all(f"%glm {name} " in shown for name in SUB_COMMANDS)


def test_bridge_is_off_without_a_kernel(glm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    glm.run_line_magic("glm", "bridge")
    assert out(capsys).strip() == "bridge: off (no Jupyter kernel)"
