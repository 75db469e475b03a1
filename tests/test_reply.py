"""The reply object: a cut reply's note, and which code blocks ``.code`` takes."""

from __future__ import annotations

import html

import pytest

from glm_magic.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from glm_magic.reply import Reply, ReplyBuilder

CLOSED = "Here:\n\n```python\nprint(1)\n```\n\n"
CUT = CLOSED + "And more:\n\n```python\nfor i in range(3):\n    print("


def cut_reply(model: str, out: int, cap: int | None) -> Reply:
    return Reply(
        text="text",
        model=model,
        usage=Usage(prompt_tokens=10, completion_tokens=out),
        finish_reason="length",
        max_tokens=cap,
    )


@pytest.mark.parametrize(
    ("model", "out", "cap", "words"),
    [
        ("glm-4.7", 40, 40, "Cut at 40 tokens: your max_tokens cap (40) was reached; allow more"),
        ("glm-4.5v", 16_384, 16_384, "your max_tokens (16,384) is glm-4.5v's maximum output"),
        ("glm-4.5v", 16_384, None, "glm-4.5v's maximum output (16,384 tokens in the catalog)"),
        ("glm-4.7", 7_890, None, "the server's own output limit (no max_tokens was set)"),
        ("glm-4.7", 7_890, None, "--max-tokens N (up to 131,072, glm-4.7's maximum)"),
        ("my-local-model", 500, None, "allow more with --max-tokens N"),
    ],
)
def test_the_note_says_where_and_how_to_allow_more(
    model: str, out: int, cap: int | None, words: str
) -> None:
    reply = cut_reply(model, out, cap)
    assert reply.truncated and not reply.complete
    assert words in reply.note
    assert "\n" not in reply.note
    assert "finish: length" in reply.footer()


def test_only_a_cut_reply_has_a_note() -> None:
    assert Reply(text="t", finish_reason="stop").note == ""
    assert not Reply(text="t", finish_reason="stop").truncated
    failed = Reply(text="t", finish_reason="length", error="Stream broken: cut")
    assert not failed.truncated and failed.note == ""
    assert "local" not in cut_reply("my-local-model", 5, None).note  # no made-up maximum


def test_code_leaves_out_the_block_a_cut_reply_ended_inside() -> None:
    cut = Reply(text=CUT, finish_reason="length")
    assert cut.code == "print(1)"
    assert cut.cut_code == "for i in range(3):\n    print("
    only_open = Reply(text="Start:\n\n```python\nx = (", finish_reason="length")
    assert only_open.code == "" and only_open.cut_code == "x = ("
    # A complete reply whose last fence was never closed still gives its code.
    whole = Reply(text=CUT + "i)", finish_reason="stop")
    assert whole.code.endswith("print(i)") and whole.cut_code == ""
    # A stopped reply (an error) is cut short the same way.
    stopped = Reply(text=CUT, finish_reason=None, error="Stopped: interrupted")
    assert stopped.code == "print(1)" and stopped.cut_code.startswith("for i")


def test_a_cut_shell_sample_is_not_reported_as_left_out_code() -> None:
    text = CLOSED + "Output:\n\n```text\n1\n2"
    assert Reply(text=text, finish_reason="length").cut_code == ""


def test_html_shows_the_note_after_the_cut_code() -> None:
    reply = cut_reply("glm-4.7", 12, 12)
    reply.text = CUT
    shown = html.unescape(reply._repr_html_())
    head, _, tail = shown.partition("Cut at 12 tokens: your max_tokens cap (12)")
    assert tail, "the note is shown"
    assert head.count("<pre") == head.count("</pre>") == 2  # both blocks shown, then the note


# -- the builder: one fold of a stream's events --------------------------------------------


def test_the_builder_folds_text_thinking_tools_usage_and_the_first_finish() -> None:
    b = ReplyBuilder("glm-4.7")
    assert b.status() == "glm-4.7 · streaming… 0 chars"
    for event in [
        ReasoningDelta("Think"),
        ReasoningDelta("ing."),
        TextDelta("Hel"),
        TextDelta(""),
        TextDelta("lo"),
        ToolCallDelta(1, id="b", name="second"),
        ToolCallDelta(0, id="a", name="first", arguments='{"x": '),
        ToolCallDelta(0, arguments="1}"),
        Finish("tool_calls"),
        Finish("stop"),  # a second finish chunk (a server quirk): the first wins
    ]:
        b.add(event)
    assert b.text == "Hello" and b.reasoning == "Thinking." and b.chars == 5
    assert b.status() == "glm-4.7 · streaming… 5 chars"
    b.add(Usage(prompt_tokens=9, completion_tokens=4, total_tokens=13))
    assert b.status() == "glm-4.7 · streaming… 4 tokens"
    reply = b.snapshot()
    assert (reply.text, reply.reasoning, reply.finish_reason) == (
        "Hello",
        "Thinking.",
        "tool_calls",
    )
    assert [(c.index, c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        (0, "a", "first", '{"x": 1}'),
        (1, "b", "second", ""),
    ]
    assert reply.complete and reply.usage is not None and reply.usage.completion_tokens == 4
    failed = b.snapshot(error="Stream broken: cut")
    assert not failed.complete and failed.footer().endswith("incomplete")


def test_the_builder_redacts_what_is_read_never_what_is_kept() -> None:
    b = ReplyBuilder("m", redact=lambda text: text.replace("SECRET", "***"))
    for piece in ["the SEC", "RET is ", "here"]:
        b.add(TextDelta(piece))
    b.add(ReasoningDelta("SECRET"))
    assert b.text == "the *** is here" and b.reasoning == "***"
    assert b.chars == len("the SECRET is here")
    b.add(TextDelta(" and SECRET"))
    assert b.snapshot().text == "the *** is here and ***"
