"""The conversation memory and its trim to the model's window (core/conversation.py)."""

from __future__ import annotations

from glm_magic.core.conversation import Conversation
from glm_magic.models import model_info

INFO = model_info("glm-4.7")


def test_an_empty_answer_is_not_remembered_and_reset_keeps_the_system() -> None:
    c = Conversation(system="be brief")
    c.add("q1", "a1", "glm-4.7")
    c.add("q2", "   ")  # a failed or stopped reply with no text
    assert [(t.user, t.assistant, t.model) for t in c.turns] == [("q1", "a1", "glm-4.7")]
    c.reset()
    assert c.turns == [] and c.system == "be brief"


def test_messages_alternate_after_the_system_and_end_with_the_new_prompt() -> None:
    c = Conversation(system="be brief")
    c.add("q1", "a1")
    c.add("q2", "a2")
    trim = c.messages_for("q3", INFO)
    assert [(m["role"], m["content"]) for m in trim.messages] == [
        ("system", "be brief"),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
        ("user", "q3"),
    ]
    assert trim.dropped_turns == 0 and trim.prompt_tokens > 0
    override = c.messages_for("q3", INFO, system="other", history=False)
    assert override.messages == [
        {"role": "system", "content": "other"},
        {"role": "user", "content": "q3"},
    ]
    assert override.dropped_turns == 0, "history=False leaves turns out without a note"
    assert Conversation().messages_for("q", INFO).messages == [{"role": "user", "content": "q"}]


def test_the_oldest_turns_go_first_and_the_rest_stay_in_order() -> None:
    c = Conversation()
    c.add("q-first", "short")  # would fit, but keeping it would leave a hole in the middle
    big = "word " * 40_000  # ~40K tokens a turn against a window of ~200K less the reply
    for i in range(8):
        c.add(f"q{i}", big)
    trim = c.messages_for("now", INFO)
    users = [m["content"] for m in trim.messages if m["role"] == "user"]
    kept = len(users) - 1
    assert 0 < kept < 8 and trim.dropped_turns == 9 - kept
    assert users == [f"q{i}" for i in range(8 - kept, 8)] + ["now"]
    budget = INFO.context_window - INFO.reply_reserve(None)
    assert trim.prompt_tokens <= budget
    # More room kept for the reply leaves room for fewer turns.
    tighter = c.messages_for("now", INFO, max_output=INFO.max_output)
    assert tighter.dropped_turns > trim.dropped_turns


def test_a_prompt_larger_than_the_window_is_sent_alone() -> None:
    c = Conversation()
    c.add("q", "a")
    trim = c.messages_for("word " * 400_000, INFO)
    assert [m["role"] for m in trim.messages] == ["user"] and trim.dropped_turns == 1
