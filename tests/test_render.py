"""The IPython layer's renderers (:mod:`glm_magic.ipython.render`) without a kernel.

``HtmlDisplayRenderer`` talks to IPython's real ``display``/``update_display``
on an in-process shell whose display publisher captures what would go to the
front end; ``TerminalRenderer`` writes into a ``StringIO``. Replies are fed
through a real :class:`~glm_magic.reply.ReplyBuilder`.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from glm_magic.events import Finish, ReasoningDelta, TextDelta, Usage
from glm_magic.htmlrender import render_html
from glm_magic.ipython.render import HtmlDisplayRenderer, TerminalRenderer
from glm_magic.reply import Reply, ReplyBuilder

EVIL = '<img src=x onerror="window.__glm_pwned=1"> costs $5 and $6'


@pytest.fixture
def shown(ipshell: Any) -> list[dict[str, Any]]:
    """What the renderer publishes: each display or update, in order."""
    from IPython.core.displaypub import CapturingDisplayPublisher

    ipshell.display_pub = CapturingDisplayPublisher()
    return ipshell.display_pub.outputs  # type: ignore[no-any-return]


def grow(builder: ReplyBuilder, *pieces: str) -> ReplyBuilder:
    for piece in pieces:
        builder.add(TextDelta(piece))
    return builder


def finished(text: str, **kw: Any) -> Reply:
    values: dict[str, Any] = {
        "text": text,
        "model": "glm-4.7",
        "finish_reason": "stop",
        "usage": Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
        "request_id": "req-7",
    }
    values.update(kw)
    return Reply(**values)


def flush(r: HtmlDisplayRenderer, shown: list[dict[str, Any]], count: int) -> None:
    """Tick until ``count`` outputs were published (a long reply waits a little longer)."""
    deadline = time.monotonic() + 30
    while len(shown) < count and time.monotonic() < deadline:
        r.tick()
        time.sleep(0.001)


def test_one_display_then_updates_of_it_and_a_final_bundle(shown: list[dict[str, Any]]) -> None:
    r = HtmlDisplayRenderer("glm-4.7", interval=0)
    r.start()
    assert len(shown) == 1 and not shown[0]["update"]
    display_id = shown[0]["transient"]["display_id"]
    assert "glm-4.7 is working" in shown[0]["data"]["text/plain"]
    builder = grow(ReplyBuilder("glm-4.7"), "Hello", " world")
    r.progress(builder)
    flush(r, shown, 2)
    r.finish(finished("Hello world"))
    assert [o["update"] for o in shown] == [False, True, True]
    assert {o["transient"]["display_id"] for o in shown} == {display_id}
    assert shown[1]["data"]["text/plain"].startswith("Hello world\n-- ")  # the status line
    final = shown[-1]
    assert final["data"]["text/plain"].startswith("Hello world\n-- glm-4.7")
    assert "Hello world" in final["data"]["text/html"]
    meta = final["metadata"]["glm_magic"]
    assert meta["complete"] is True and meta["request_id"] == "req-7"
    assert meta["usage"]["completion_tokens"] == 5 and r.updates == 2


def test_updates_are_held_back_within_the_interval_and_flushed_by_tick(
    shown: list[dict[str, Any]],
) -> None:
    render_html("warm up")  # the first render imports markdown-it: a cost that paces updates
    r = HtmlDisplayRenderer("glm-4.7", interval=3600)
    r.start()
    builder = ReplyBuilder("glm-4.7")
    for i in range(50):
        r.progress(grow(builder, f"token{i} "))
        r.tick()
    assert len(shown) == 1, "nothing but the placeholder within the interval"
    r.interval = 0  # the interval has passed: the held-back update goes out on a tick
    flush(r, shown, 2)
    assert len(shown) == 2 and "token49" in shown[-1]["data"]["text/plain"]
    time.sleep(0.3)  # long past the interval: only a pending update would go out now
    r.tick()
    assert len(shown) == 2, "a flushed update is not sent again"


def test_model_text_is_escaped_in_every_update(shown: list[dict[str, Any]]) -> None:
    r = HtmlDisplayRenderer(EVIL, interval=0)
    r.start()
    builder = ReplyBuilder(EVIL)
    builder.add(ReasoningDelta(EVIL))
    r.progress(grow(builder, EVIL))
    flush(r, shown, 2)
    r.finish(finished(EVIL, model=EVIL, reasoning=EVIL))
    for out in shown:
        page = out["data"].get("text/html", "")
        assert "<img" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
        assert "$5" not in page, "a literal $ is escaped so MathJax never pairs it"
    assert EVIL in shown[-1]["data"]["text/plain"]


def test_a_failure_with_nothing_shown_empties_the_placeholder(
    shown: list[dict[str, Any]],
) -> None:
    r = HtmlDisplayRenderer("glm-4.7", interval=0)
    r.start()
    r.finish(Reply(model="glm-4.7", error="Rate limited: slow down"))
    assert shown[-1]["data"] == {"text/plain": ""}, "the error shows once, as the cell's error"


def test_a_partial_reply_keeps_its_text_without_repeating_the_error(
    shown: list[dict[str, Any]],
) -> None:
    r = HtmlDisplayRenderer("glm-4.7", interval=0)
    r.start()
    r.finish(finished("Half an ans", finish_reason=None, error="Stopped: interrupted"))
    final = shown[-1]
    assert final["data"]["text/plain"].startswith("Half an ans")
    assert "Stopped" not in final["data"]["text/plain"]
    assert final["metadata"]["glm_magic"]["complete"] is False


def test_text_format_sends_no_html(shown: list[dict[str, Any]]) -> None:
    r = HtmlDisplayRenderer("glm-4.7", fmt="text", interval=0)
    r.start()
    r.progress(grow(ReplyBuilder("glm-4.7"), "**plain**"))
    flush(r, shown, 2)
    r.finish(finished("**plain**"))
    assert all("text/html" not in o["data"] for o in shown[1:])


def test_terminal_prints_thinking_then_text_then_footer() -> None:
    out = io.StringIO()
    r = TerminalRenderer("glm-4.7", stream=out)
    r.start()
    builder = ReplyBuilder("glm-4.7")
    builder.add(ReasoningDelta("Let me see."))
    r.progress(builder)
    r.progress(grow(builder, "Hel"))
    r.progress(grow(builder, "lo"))
    builder.add(Finish("stop"))
    r.finish(finished("Hello there", reasoning="Let me see."))
    printed = out.getvalue()
    assert printed.startswith("[thinking] Let me see.\n\nHello there\n-- glm-4.7")
    assert printed.count("Hel") == 1, "each piece is printed once"
    assert "\x1b[" not in printed, "no colour codes off a terminal"


@pytest.mark.parametrize(
    ("reply", "line"),
    [
        (finished("Part", finish_reason=None, error="Stopped: ^C"), "[Stopped: ^C]"),
        (finished("Cut", finish_reason="length", max_tokens=5), "[Cut at 5 tokens"),
    ],
)
def test_terminal_prints_the_error_or_the_note_on_its_own_line(reply: Reply, line: str) -> None:
    out = io.StringIO()
    r = TerminalRenderer("glm-4.7", stream=out)
    r.finish(reply)
    assert f"{reply.text}\n{line}" in out.getvalue()
