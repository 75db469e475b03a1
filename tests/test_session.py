"""The Session core (:mod:`glm_magic.core.session`) without a kernel.

Context comes from a real in-process ``InteractiveShell`` (the ``ipshell``
fixture), replies from the bundled endpoint over loopback.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from glm_magic import failures
from glm_magic.core.session import (
    DEFAULT_SYSTEM,
    MESSAGE_OVERHEAD,
    Defaults,
    Session,
    context_budget,
)
from glm_magic.errors import GlmError
from glm_magic.models import model_info
from glm_magic.reply import Reply, ReplyBuilder
from glm_magic.testing import EndpointServer

from .conftest import PLAIN_KEY
from .helpers import clear_glm_env


class Shown:
    """A renderer that keeps the final reply (the renderers are tested in test_render.py)."""

    def __init__(self) -> None:
        self.final: list[Reply] = []

    def start(self) -> None:
        pass

    def progress(self, builder: ReplyBuilder) -> None:
        pass

    def tick(self) -> None:
        pass

    def finish(self, reply: Reply) -> None:
        self.final.append(reply)


@pytest.fixture
def session(ipshell: Any, fresh_endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    clear_glm_env(monkeypatch, GLM_BASE_URL=fresh_endpoint.base_url, RUNAPI_KEY=PLAIN_KEY)
    written: list[tuple[Reply, str | None]] = []
    s = Session(Defaults(), shell=ipshell, on_reply=lambda r, out: written.append((r, out)))
    s.written = written  # type: ignore[attr-defined]
    yield s
    s.close()


# -- preparing requests ------------------------------------------------------------------


def test_the_context_budget_is_three_quarters_of_the_room_and_at_least_256() -> None:
    info = model_info("glm-4.7")
    room = info.context_window - info.reply_reserve(1000) - 500 - MESSAGE_OVERHEAD
    assert context_budget(info, 1000, 500) == room * 3 // 4
    assert context_budget(info, info.context_window, 0) == 256


def test_prepare_joins_context_and_prompt_and_remembers_only_the_prompt(session: Any) -> None:
    session.shell.user_ns["prices"] = {"apple": 3}
    settings = session.settings(model="glm-4.7")
    prepared = session.prepare("what costs most?", settings, context="vars:prices")
    system, user = prepared.messages
    assert system == {"role": "system", "content": DEFAULT_SYSTEM}
    context, prompt = user["content"].split("\n\n---\n\n")
    assert "prices" in context and "apple" in context and prompt == "what costs most?"
    assert prepared.remember_as == "what costs most?"
    note = prepared.notes[0]
    assert note.startswith("context: ") and note.endswith(f"~{prepared.context_tokens:,} tokens")


def test_the_selected_context_is_fitted_to_the_budget_rule(session: Any) -> None:
    for i in range(40):
        session.shell.run_cell(f"text_{i} = '{'word ' * 200}'", store_history=True)
    settings = session.settings(model="glm-4.7")
    # max_tokens fills the window: the rule's floor of 256 tokens is all the context gets.
    settings = settings.with_changes(max_tokens=model_info("glm-4.7").context_window)
    prepared = session.prepare("sum up", settings, context="notebook")
    assert 0 < prepared.context_tokens <= 256
    assert any("left out" in n for n in prepared.notes), prepared.notes


def test_the_conversation_is_trimmed_oldest_first_with_a_note(session: Any) -> None:
    big = "word " * 60_000  # ~60K tokens a turn: three do not fit glm-4.7's window
    for i in range(4):
        session.conversation.add(f"question {i}", big)
    prepared = session.prepare("and now?", session.settings(model="glm-4.7"))
    users = [m["content"] for m in prepared.messages if m["role"] == "user"]
    assert users[-1] == "and now?" and "question 3" in users and "question 0" not in users
    dropped = 4 - (len(users) - 1)
    assert f"{dropped} earlier turn(s) left out to fit the window" in prepared.notes


def test_the_key_never_reaches_the_prepared_messages(session: Any) -> None:
    # Masked where the context is built, not only on the way out (a dry run shows these).
    session.shell.user_ns["label"] = f"the key is {PLAIN_KEY}"
    settings = session.settings(model="glm-4.7")
    prepared = session.prepare(f"is {PLAIN_KEY} safe?", settings, context="vars:label")
    text = repr(prepared.messages) + prepared.remember_as
    assert "the key is" in text and PLAIN_KEY not in text


def test_prepare_assist_builds_explain_with_the_traceback_and_more_context(session: Any) -> None:
    shell = session.shell
    failures.install(shell)
    try:
        shell.user_ns["label"] = "a plain value"
        shell.run_cell("values = [1, 2]", store_history=True)
        shell.run_cell("print(sum(valuez))", store_history=True)
        failure = failures.failure_log(shell).last()
        assert failure is not None
        settings = session.settings(model="glm-4.7")
        prepared = session.prepare_assist("explain", failure, settings, context="vars:label")
    finally:
        failures.uninstall(shell)
    user = prepared.messages[-1]["content"]
    assert "NameError" in user and "sum(valuez)" in user and "values = [1, 2]" in user
    assert "### More context the user selected" in user and "a plain value" in user
    assert prepared.remember_as.startswith(f"Explain the failure in {failure.label}: ")
    assert prepared.notes[0].startswith("explain: ")


# -- running and remembering ---------------------------------------------------------------


def test_run_remembers_the_exchange_once(session: Any) -> None:
    prepared = session.prepare("hello", session.settings(model="glm-4.7"))
    shown = Shown()
    reply = session.run(prepared, shown, out="answer")
    assert shown.final == [reply] and reply.complete
    assert [(t.user, t.assistant) for t in session.conversation.turns] == [("hello", reply.text)]
    assert session.last_reply is reply and session.written == [(reply, "answer")]
    assert session.totals.replies == 1
    assert session.totals.completion_tokens == reply.usage.completion_tokens


def test_a_failed_run_remembers_the_partial_reply(session: Any) -> None:
    settings = session.settings(model="glm-4.7+tokens=40+fault=cut").with_changes(max_retries=0)
    prepared = session.prepare("hello", settings)
    with pytest.raises(GlmError) as caught:
        session.run(prepared, Shown())
    partial = caught.value.partial
    assert partial is not None and partial.text and not partial.complete
    assert session.last_reply is partial and session.written == [(partial, None)]
    assert len(session.conversation.turns) == 1 and session.totals.replies == 1


def test_start_remembers_once_before_on_done(session: Any) -> None:
    prepared = session.prepare("hello", session.settings(model="glm-4.7"))
    seen: list[tuple[Reply, Exception | None, Reply | None, int]] = []
    done = threading.Event()

    def on_done(reply: Reply, error: Exception | None) -> None:
        seen.append((reply, error, session.last_reply, len(session.conversation.turns)))
        done.set()

    run = session.start(prepared, lambda _b: None, on_done)
    assert done.wait(30)
    run.thread.join(10)
    reply, error, last, turns = seen[0]
    assert error is None and reply.complete and last is reply and turns == 1
    assert session.totals.replies == 1 and session.written == [(reply, None)]
