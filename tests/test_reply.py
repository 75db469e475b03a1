"""The reply object: a cut reply's note, and which code blocks ``.code`` takes."""

from __future__ import annotations

import html

import pytest

from glm_magic.events import Usage
from glm_magic.reply import Reply

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
