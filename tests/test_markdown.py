"""Fenced code blocks: what becomes a reply's .code and the panel's code blocks."""

from __future__ import annotations

from glm_magic.markdown import code_blocks, join_code, segments
from glm_magic.reply import Reply


def test_blocks_languages_and_order() -> None:
    text = (
        "Intro\n```python\nx = 1\n```\ntext\n~~~bash\nls -l\n~~~\n"
        "````\n```\nnested\n```\n````\n  ```py\n  y = 2\n  ```"
    )
    blocks = code_blocks(text)
    assert [(b.lang, b.code) for b in blocks] == [
        ("python", "x = 1"),
        ("bash", "ls -l"),
        ("", "```\nnested\n```"),
        ("py", "y = 2"),
    ]
    assert all(b.closed for b in blocks)
    assert join_code(text) == "x = 1\n\n```\nnested\n```\n\ny = 2"  # bash left out
    kinds = [s.is_code for s in segments(text)]
    assert kinds == [False, True, False, True, True, True]


def test_unclosed_fence_runs_to_the_end_and_inline_backticks_are_not_fences() -> None:
    text = "Use ``` carefully: ```not a fence`x``` \n```python\ndef f():\n    return 1"
    blocks = code_blocks(text)
    assert len(blocks) == 1 and not blocks[0].closed
    assert blocks[0].code == "def f():\n    return 1"


def test_only_other_languages_are_still_offered() -> None:
    reply = Reply(text="```sql\nselect 1\n```", model="m")
    assert reply.code == "select 1"
    assert Reply(text="no code here").code == ""


def test_fenced_blocks_survive_backticks_inside() -> None:
    from glm_magic.markdown import fence_for, fenced

    assert fence_for("x = 1") == "```"
    assert fence_for("a ``inline`` b") == "```"
    assert fence_for("```\ncode\n`````") == "``````"
    inner = 'doc = """\n```\nnot code\n```\n"""'
    block = fenced(inner, "python")
    assert code_blocks(block)[0].code == inner
