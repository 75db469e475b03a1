"""A model's Markdown as safe HTML (glm_magic.htmlrender), and the reply's HTML output.

These are the regression suite of the hand-written renderer this module
replaced (every payload and Markdown case it covered), the security review's
payloads, and property tests: whatever the model writes, no tag, attribute or
URL of its own reaches the page.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.htmlrender import (
    REPLY_CSS,
    code_block_html,
    escape,
    render_html,
    reply_html,
    thinking_html,
    thinking_label,
)
from glm_magic.ipython.render import compose_html, reply_bundle
from glm_magic.markdown import DOLLAR, code_blocks
from glm_magic.reply import Reply

ALLOWED_TAGS = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr", "table",
    "thead", "tbody", "tr", "th", "td", "strong", "em", "s", "code", "pre", "a", "span",
    "div", "button", "br", "details", "summary",
}  # fmt: skip

#: The payloads that ran script in JupyterLab when replies were raw Markdown.
PAYLOADS = [
    "<script>window.__glm_pwned = 1</script>",
    '<img src=x onerror="window.__glm_pwned = 1">',
    "<svg><image href=x onerror=window.__glm_pwned=1></svg>",
    "<details open ontoggle=window.__glm_pwned=1><summary>x</summary></details>",
    '<iframe srcdoc="<script>parent.__glm_pwned=1</script>"></iframe>',
    '<a href="https://x" onclick="window.__glm_pwned=1">x</a>',
    "[click](javascript:window.__glm_pwned=1)",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    "```\n</code></pre><script>window.__glm_pwned=1</script>\n```",
    "`</code><img src=x onerror=alert(1)>`",
    "<div\nonmouseover=alert(1)>hover</div>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]


def tags(out: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)", out)}


def handlers(out: str) -> list[str]:
    """Event-handler attributes in ``out``, outside our own Copy/Insert buttons."""
    outside_buttons = re.sub(r"<button[^>]*>", "", out)
    return re.findall(r"<[^>]*\son\w+\s*=", outside_buttons)


def hrefs(out: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', out)]


def assert_safe(out: str) -> None:
    out = out.replace(REPLY_CSS, "")  # our own stylesheet, a constant
    assert tags(out) <= ALLOWED_TAGS, out
    assert not handlers(out), out
    assert all(h.startswith(("http://", "https://", "mailto:")) for h in hrefs(out)), out
    assert "<img" not in out and "<script" not in out.lower() and "<iframe" not in out


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>&\"' `*_~#-|[]()!:/=\n$\\abcjs")), max_size=300))
def test_model_text_never_becomes_markup(text: str) -> None:
    assert_safe(render_html(text))
    assert_safe(render_html(text, actions=True))


@pytest.mark.parametrize("evil", PAYLOADS)
def test_payloads_are_text_in_answer_thinking_and_error(evil: str) -> None:
    for out in (
        render_html(evil, actions=True),
        thinking_html(evil, done=True),
        reply_html(model=evil, text=evil, reasoning=evil, footer=evil, error=evil, done=True),
        Reply(text=evil, reasoning=evil, model=evil, error=evil)._repr_html_(),
    ):
        assert_safe(out)


@pytest.mark.parametrize(
    "link",
    [
        "[label](/api/kernels)",  # relative: into the Jupyter server that shows the output
        "[label](//evil.example/p)",
        "[label](ftp://host/f)",
        "<ftp://host/f>",
        "[label](jav&#x09;ascript:alert(1))",
    ],
)
def test_links_markdown_it_accepts_but_we_do_not_stay_text(link: str) -> None:
    # markdown-it-py already refuses javascript:/data:/vbscript:; these it lets through.
    out = render_html(link)
    assert_safe(out)
    assert "<a" not in out and ("label" in out or "ftp://host/f" in out)


def test_raw_html_shows_as_the_characters_written() -> None:
    out = render_html('<img src=x onerror="alert(1)"> and <b>bold?</b>')
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out
    assert "&lt;b&gt;bold?&lt;/b&gt;" in out


def test_markdown_features() -> None:
    md = (
        "# Title\n\nSome **bold**, *em*, `a < b` and ~~gone~~ with snake_case_name.\n\n"
        "- one\n- two\n  - nested\n\n1. first\n2. second\n\n> quoted\n\n"
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\n[site](https://example.com/?a=1&b=2) "
        "and <https://example.org/x>.\n\n---"
    )
    out = render_html(md)
    assert "<h1>Title</h1>" in out
    assert "<strong>bold</strong>" in out and "<em>em</em>" in out and "<s>gone</s>" in out
    assert "<code>a &lt; b</code>" in out and "snake_case_name" in out
    assert out.count("<ul>") == 2 and "<ol>" in out and "<li>nested</li>" in out
    assert re.search(r"<blockquote>\s*<p>quoted</p>\s*</blockquote>", out)
    assert '<td style="text-align:right">2</td>' in out
    assert 'href="https://example.com/?a=1&amp;b=2"' in out
    assert out.count('target="_blank" rel="noopener noreferrer"') == 2
    assert 'href="https://example.org/x"' in out and "<hr" in out


def test_images_are_links_never_loaded() -> None:
    out = render_html("![chart](https://tracker.example/p.png?leak=1)")
    assert "<img" not in out
    assert 'href="https://tracker.example/p.png?leak=1"' in out and "image: chart" in out


def test_inline_code_is_not_markdown() -> None:
    assert "<code>**not bold**</code>" in render_html("`**not bold**`")
    assert render_html("a_b_c and *x*") == "<p>a_b_c and <em>x</em></p>\n"


def test_code_is_highlighted_and_buttons_carry_the_exact_code() -> None:
    code = "print(\"<hi> & 'bye' $5\")\n"
    out = code_block_html(code, "python", actions=True, insert_note="Copied, not inserted.")
    attr = re.search(r'data-code="([^"]*)"', out)
    assert attr is not None and html.unescape(attr.group(1)) == code
    assert "glm-copy" in out and "glm-insert" in out and "navigator.clipboard" in html.unescape(out)
    assert 'data-insert-note="Copied, not inserted."' in out
    plain = code_block_html(code, "python", actions=False)
    assert "button" not in plain and "data-code" not in plain
    highlighted = render_html("```python\nimport os\n```")
    assert '<span class="kn">import</span>' in highlighted
    assert '<span class="nn">os</span>' in highlighted


def test_rendered_blocks_are_the_reply_code_blocks() -> None:
    text = "a\n\n```python\nx = 1\n```\n\n- item\n\n  ```sql\n  select 1\n  ```\n\n```js\nunclosed"
    out = render_html(text, actions=True)
    shown = [html.unescape(c) for c in re.findall(r'data-code="([^"]*)"', out)]
    assert shown == [b.code for b in code_blocks(text)] == ["x = 1", "select 1", "unclosed"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["prose", "fence", "tilde", "quote", "item"]),
            st.text(alphabet=st.sampled_from(list("ab`~ \n$<")), max_size=30),
        ),
        max_size=8,
    )
)
def test_what_is_shown_and_what_is_inserted_agree(parts: list[tuple[str, str]]) -> None:
    chunks = []
    for kind, body in parts:
        if kind == "fence":
            chunks.append(f"```py\n{body}\n```")
        elif kind == "tilde":
            chunks.append(f"~~~\n{body}\n~~~")
        elif kind == "quote":
            chunks.append("> " + body.replace("\n", "\n> "))
        elif kind == "item":
            chunks.append("- " + body)
        else:
            chunks.append(body)
    text = "\n\n".join(chunks)
    shown = [
        html.unescape(c)
        for c in re.findall(r'data-code="([^"]*)"', render_html(text, actions=True))
    ]
    assert shown == [b.code for b in code_blocks(text)]


def test_streaming_render_has_no_buttons_and_final_has_them() -> None:
    text = "Here:\n\n```python\nx = 1\n```\n"
    streaming = reply_html(model="m", text=text, footer="m · streaming…", done=False, actions=True)
    final = reply_html(
        model="m", text=text, footer="m · 1 s", error="Stopped: by you", done=True, actions=True
    )
    assert "glm-copy" not in streaming and "glm-copy" in final
    assert 'class="glm-error">⚠ Stopped: by you' in final
    assert "working" in reply_html(model="m", text="", done=False)


# -- dollars and math ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "revenue rose from $1.2M to $3.4M",
        "it costs $5",
        "between $ 3 and $-2, or $+1, or $.5 and $1,200",
        "prices: $0.60 / $2.20",
    ],
)
def test_currency_never_becomes_math(text: str) -> None:
    out = render_html(text)
    assert "glm-math" not in out
    assert "$" not in out.replace(DOLLAR, ""), out  # every dollar is the safe form
    assert html.unescape(re.sub(r"<[^>]+>", "", out)).strip() == text


def test_real_math_is_kept_for_mathjax() -> None:
    out = render_html("Pythagoras: $x^2 + y^2 = z^2$, inline \\(a_1\\) and\n\n$$\nE = mc^2\n$$")
    assert '<span class="glm-math">$x^2 + y^2 = z^2$</span>' in out
    assert '<span class="glm-math">$a_1$</span>' in out
    assert '<div class="glm-math">$$E = mc^2$$</div>' in out
    # Math content is escaped like everything else.
    assert "&lt;" in render_html("$a < b$") and "<b" not in render_html("$a <b> c$")


def test_dollars_in_code_are_untouched() -> None:
    out = render_html("`$HOME` and\n\n```bash\necho $PATH $1\n```")
    assert "<code>$HOME</code>" in out and "$PATH" in out and DOLLAR not in out


def test_footer_and_error_dollars_are_escaped() -> None:
    out = compose_html(
        model="m", text="it costs $5", reasoning="", footer="~$0.0004", error="", done=True
    )
    assert "$" not in out.replace(DOLLAR, "").replace("$5", "")
    assert escape("$") == DOLLAR


# -- the reply's bundle -------------------------------------------------------------------


def test_reply_bundle_is_html_and_exact_plain_text() -> None:
    text = "Cost **$5** <img src=x onerror=alert(1)>"
    data, meta = reply_bundle(Reply(text=text, model="glm-4.7", finish_reason="stop"))
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"].startswith(text + "\n")  # exactly the model's text, then the footer
    assert_safe(data["text/html"])
    assert meta["glm_magic"]["model"] == "glm-4.7"
    assert "text/html" not in reply_bundle(Reply(text=text), "text")[0]


def test_thinking_label_counts_words() -> None:
    assert thinking_label("one", done=True) == "Thinking (1 word)"
    assert thinking_label("a b c", done=False) == "Thinking… (3 words)"
    assert thinking_label("x " * 1500, done=True) == "Thinking (1,500 words)"


# -- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        ">" * 1500,
        "> " * 1500 + "deep",
        "- " * 3000 + "deep",
        "[a](" * 20000,
        "*a " * 20000,
        "`" * 20000,
        "[" * 30000 + "]" * 30000,
        "<" * 30000,
        "$" * 30000,
        "\\(" * 10000,
    ],
)
def test_pathological_input_renders_without_error(bad: str) -> None:
    # Linear time is measured in benchmarks/bench_render.py (no timing here);
    # this checks the renderer neither raises nor blows the output up.
    out = render_html(bad)
    assert len(out) <= 12 * len(bad) + 100
    assert_safe(out)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("> -*[](`$\\\n1.")), max_size=2000))
def test_random_nesting_never_raises(text: str) -> None:
    assert_safe(render_html(text))


# -- pacing by render cost ------------------------------------------------------------------


def test_costly_renders_are_paced_to_a_tenth_of_the_time() -> None:
    from glm_magic.core.runner import RENDER_SHARE, paced_interval
    from glm_magic.ipython.render import HtmlDisplayRenderer
    from glm_magic.reply import ReplyBuilder

    assert paced_interval(0.12, 0.0) == 0.12
    assert paced_interval(0.12, 0.5) == pytest.approx(0.5 * (1 - RENDER_SHARE) / RENDER_SHARE)
    renderer = HtmlDisplayRenderer("m", interval=0.12)
    renderer._last = 0.0
    builder = ReplyBuilder("m")
    assert renderer._due(builder)  # an hour after "the last update"
    renderer._render_cost = 1e6  # a render that took "forever": the next one waits
    assert not renderer._due(builder)
