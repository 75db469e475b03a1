"""Markdown through one parser: code blocks, escaping our own text, safe Markdown cells."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.markdown import (
    DOLLAR,
    code_blocks,
    escape_text,
    join_code,
    parser,
    safe_markdown,
    without_code,
)
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


def test_unclosed_blocks_are_marked_whatever_their_container() -> None:
    assert [b.closed for b in code_blocks("```py\nx = 1\n```\n\n```py\ny = 2\n")] == [True, False]
    assert [b.closed for b in code_blocks("> ```\n> a\n")] == [False]
    assert [b.closed for b in code_blocks("- ```\n  a\n  ```")] == [True]
    assert [b.closed for b in code_blocks("```\n```")] == [True]
    assert [b.closed for b in code_blocks("```")] == [False]


def test_without_code_drops_what_join_code_takes() -> None:
    text = "**Diagnosis:** typo.\n\n```python\nx = 1\n```\n\n```text\nout\n```\n\nRun it."
    assert without_code(text) == "**Diagnosis:** typo.\n\n```text\nout\n```\n\nRun it."
    assert without_code("```sql\nselect 1\n```\nok") == "ok"


# -- our own text, escaped ---------------------------------------------------------------


def _rendered_text(markdown: str) -> str:
    """What a reader sees: the parser's HTML with tags dropped, our dollar spans read back."""
    out = parser().render(markdown).replace(html.escape(DOLLAR), "$")
    return html.unescape(re.sub(r"<[^>]+>", "", out.replace(DOLLAR, "$"))).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc 1.$<>&*_`[]()#|~-+=!\\{}")), max_size=80))
def test_escaped_text_renders_back_to_the_same_characters(value: str) -> None:
    md = escape_text(value)
    # Under html=True (JupyterLab's renderer reads raw HTML) the dollar spans are tags.
    from markdown_it import MarkdownIt

    seen = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    # Every dollar stands alone in its own element: nothing MathJax could pair.
    assert "$" not in re.sub(r"<span>\$</span>", "", seen)
    text = html.unescape(re.sub(r"<[^>]+>", "", seen)).strip()
    assert text == value.strip()


def test_escape_is_never_applied_inside_code() -> None:
    text = "Use `$HOME` and `<b>` here: $5\n\n```bash\necho $PATH <x> && ls\n```"
    out = safe_markdown(text)
    assert "`$HOME`" in out and "`<b>`" in out
    assert "```bash\necho $PATH <x> && ls\n```" in out
    assert f"{DOLLAR}5" in out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Hi <img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("> quote <script>x</script>", "> quote &lt;script&gt;x&lt;/script&gt;"),
        ("| a | b |\n|---|---|\n| <i>x</i> | $5 |", f"| &lt;i&gt;x&lt;/i&gt; | {DOLLAR}5 |"),
        ("- [a](javascript:alert(1))", "- \\[a\\](javascript:alert(1))"),
        ("from $1.2M to $3.4M; $x^2$ stays", f"from {DOLLAR}1.2M to {DOLLAR}3.4M; $x^2$ stays"),
    ],
)
def test_safe_markdown_rewrites_only_unsafe_literals(text: str, shown: str) -> None:
    out = safe_markdown(text)
    assert shown in out, out
    assert "<img" not in out and "<script" not in out and "<i>" not in out


def test_safe_markdown_leaves_ordinary_text_exactly() -> None:
    text = "# Title\n\nA *list*:\n\n- one\n- [two](https://x.org)\n\n```py\nx < 1\n```"
    assert safe_markdown(text) == text
