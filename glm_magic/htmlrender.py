"""A model's Markdown as safe HTML: markdown-it-py tokens, our rules, nothing raw.

Every surface that shows a reply (``%%glm`` and explain/fix outputs, the
reply object, the chat panel, the failing-cell buttons) renders it here.
Outputs of the running session are *trusted* in JupyterLab, so their HTML
reaches the page unsanitized: the guarantees therefore live here, not in
the frontend.

- The parser (:func:`glm_magic.markdown.parser`) never reads raw HTML
  (``html=False``): a model's ``<img onerror>``, ``<script>`` or ``<iframe>``
  is text. Every rule below escapes what it writes.
- Links open in a new tab with ``rel="noopener noreferrer"`` and only for
  ``http``, ``https`` and ``mailto``; anything else (``javascript:``,
  ``data:``, ``file:``, relative) shows as its label. Images are shown as a
  link to the image, never loaded: loading a model-chosen URL would let a
  prompt-injected reply send data to any server.
- Math is kept for the notebook's MathJax (``$...$`` / ``$$...$$``); every
  literal ``$`` is written as :data:`~glm_magic.markdown.DOLLAR`, so amounts
  never pair up as math (see :mod:`glm_magic.markdown`).
- Fenced code is highlighted with Pygments through the ``fence`` rule; with
  ``actions`` (the panel) it gets Copy / Insert buttons whose handlers are
  our own fixed script, reading the code from an escaped attribute.
- Rendering is linear in the input: the parser's nesting limit bounds depth
  and its rules do not backtrack (measured in ``benchmarks/bench_render.py``).

Imports markdown-it-py and Pygments lazily, on the first rendered reply.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .markdown import DOLLAR, PYTHON_LANGS, parser

if TYPE_CHECKING:
    from markdown_it.token import Token

__all__ = [
    "REPLY_CSS",
    "TOKEN_COLOURS",
    "code_block_html",
    "escape",
    "render_html",
    "reply_html",
    "thinking_html",
    "thinking_label",
    "token_css",
]

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def escape(text: str) -> str:
    """Plain text as HTML that shows exactly these characters (``$`` never opens math)."""
    return html.escape(text, quote=True).replace("$", DOLLAR)


def thinking_label(reasoning: str, *, done: bool) -> str:
    """``Thinking (12 words)``; ``Thinking… (1 word)`` while it streams."""
    words = len(reasoning.split())
    return f"Thinking{'' if done else '…'} ({words:,} word{'' if words == 1 else 's'})"


def thinking_html(reasoning: str, *, done: bool) -> str:
    """The model's thinking, collapsed under a summary, rendered like the answer."""
    if not reasoning.strip():
        return ""
    return (
        f'<details class="glm-thinking"><summary><em>{thinking_label(reasoning, done=done)}'
        f"</em></summary>{render_html(reasoning)}</details>"
    )


# -- code ---------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _highlight(code: str, lang: str) -> str:
    """Highlighted HTML of ``code`` (cached: a streaming reply re-renders closed blocks)."""
    # Pygments comes with IPython; it ships no type hints.
    from pygments import highlight  # type: ignore[import-untyped,unused-ignore]
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped,unused-ignore]
    from pygments.lexers import (  # type: ignore[import-untyped,unused-ignore]
        PythonLexer,
        TextLexer,
        get_lexer_by_name,
    )
    from pygments.util import ClassNotFound  # type: ignore[import-untyped,unused-ignore]

    if lang.lower() in PYTHON_LANGS:
        lexer = PythonLexer()
    else:
        try:
            lexer = get_lexer_by_name(lang)
        except ClassNotFound:
            lexer = TextLexer()
    # Pygments escapes <, > and & itself; "$" needs nothing inside <pre> (MathJax skips it).
    return str(highlight(code, lexer, HtmlFormatter(nowrap=True)))


# The Copy / Insert handlers: fixed text of ours, never built from a reply. They
# read the code from the block's data-code attribute; navigator.clipboard needs a
# secure context (https or localhost), so an http page elsewhere falls back to a
# hidden textarea and execCommand("copy").
_COPY_JS = (
    "(function(b,mode){var box=b.closest('.glm-code'),t=box.getAttribute('data-code'),"
    "n=box.querySelector('.glm-note'),label=b.textContent;"
    "function done(ok){n.textContent=ok?(mode==='copy'?'Copied to the clipboard.':"
    "box.getAttribute('data-insert-note')):'The clipboard is not reachable here: select the "
    "code and copy it by hand.';if(ok&&mode==='copy'){b.textContent='Copied \u2713';"
    "setTimeout(function(){b.textContent=label},1500)}}"
    "function fallback(){var a=document.createElement('textarea');a.value=t;"
    "a.setAttribute('readonly','');a.style.position='fixed';a.style.opacity='0';"
    "document.body.appendChild(a);a.select();var ok=false;try{ok=document.execCommand('copy')}"
    "catch(e){}document.body.removeChild(a);done(ok)}"
    "if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t)"
    ".then(function(){done(true)},fallback)}else{fallback()}})(this,'MODE')"
)


def code_block_html(code: str, lang: str, *, actions: bool, insert_note: str = "") -> str:
    """One highlighted code block; with ``actions``, Copy and Insert buttons above it."""
    bar = f'<span class="glm-lang">{html.escape(lang or "code")}</span>'
    attrs = ""
    if actions:
        copy = html.escape(_COPY_JS.replace("MODE", "copy"), quote=True)
        insert = html.escape(_COPY_JS.replace("MODE", "insert"), quote=True)
        bar += (
            f'<button type="button" class="glm-btn glm-copy" title="Copy this block to the '
            f'clipboard" onclick="{copy}">Copy</button>'
            f'<button type="button" class="glm-btn glm-insert" title="{html.escape(insert_note)}"'
            f' onclick="{insert}">Insert</button>'
        )
        attrs = (
            f' data-code="{html.escape(code, quote=True)}"'
            f' data-insert-note="{html.escape(insert_note, quote=True)}"'
        )
    body = _highlight(code, lang) if code else ""
    note = '<span class="glm-note" role="status"></span>' if actions else ""
    return (
        f'<div class="glm-code"{attrs}><div class="glm-code-bar">{bar}</div>'
        f'<pre class="glm-pre"><code>{body}</code></pre>{note}</div>'
    )


# -- the renderer's rules -----------------------------------------------------------

Rule = Any  # markdown-it-py's renderer rule signature, untyped upstream


def _text(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    return escape(tokens[idx].content)


def _raw_as_text(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    # html=False means these never appear; if they ever do, they are text.
    return escape(tokens[idx].content)


def _fence(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    info = token.info.split()
    code = token.content[:-1] if token.content.endswith("\n") else token.content
    return code_block_html(
        code,
        info[0] if info else "",
        actions=bool(env.get("actions")),
        insert_note=str(env.get("insert_note", "")),
    )


def _code_block(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f'<pre class="glm-pre"><code>{html.escape(tokens[idx].content)}</code></pre>\n'


def _safe_url(url: str) -> bool:
    return url.strip().lower().startswith(_SAFE_SCHEMES)


def _link_open(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    href = str(tokens[idx].attrs.get("href", ""))
    safe = _safe_url(href)
    env.setdefault("links", []).append(safe)
    if not safe:
        return ""  # the label shows as plain text
    return f'<a href="{html.escape(href, quote=True)}" target="_blank" rel="noopener noreferrer">'


def _link_close(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    links: list[bool] = env.get("links", [])
    return "</a>" if (links.pop() if links else False) else ""


def _image(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    src = str(token.attrs.get("src", ""))
    label = escape(f"image: {token.content or src}")
    if not _safe_url(src):
        return label
    return (
        f'<a href="{html.escape(src, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer">{label}</a>'
    )


def _math_inline(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    token = tokens[idx]
    delim = "$$" if token.type == "math_inline_double" else "$"
    return f'<span class="glm-math">{delim}{html.escape(token.content)}{delim}</span>'


def _math_block(tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f'<div class="glm-math">$${html.escape(tokens[idx].content.strip())}$$</div>\n'


_RULES: dict[str, Rule] = {
    "text": _text,
    "html_inline": _raw_as_text,
    "html_block": _raw_as_text,
    "fence": _fence,
    "code_block": _code_block,
    "link_open": _link_open,
    "link_close": _link_close,
    "image": _image,
    "math_inline": _math_inline,
    "math_inline_double": _math_inline,
    "math_single": _math_inline,
    "math_block": _math_block,
    "math_block_eqno": _math_block,
    "math_block_label": _math_block,
}


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it.renderer import RendererHTML

    # A renderer of our own (the parser's is shared): the HTML renderer, our rules.
    renderer = RendererHTML(parser())
    for name, rule in _RULES.items():
        renderer.rules[name] = rule
    return renderer


def render_html(text: str, *, actions: bool = False, insert_note: str = "") -> str:
    """``text`` (Markdown from a model) as safe HTML; code blocks get buttons with ``actions``.

    Fenced block *n* of the HTML is ``reply.code_blocks[n]``: both come from
    the same parse.
    """
    from .markdown import tokens

    env: dict[str, Any] = {"actions": actions, "insert_note": insert_note}
    return str(_renderer().render(list(tokens(text)), parser().options, env))


def reply_html(
    *,
    model: str,
    text: str,
    reasoning: str = "",
    footer: str = "",
    error: str = "",
    done: bool,
    actions: bool = False,
    insert_note: str = "",
) -> str:
    """A reply at one moment of its life: thinking, answer, error line, footer.

    The cell output and the panel show the same HTML; ``actions`` (the panel)
    adds Copy / Insert to code blocks once the reply is ``done``.
    """
    parts: list[str] = []
    if reasoning:
        parts.append(thinking_html(reasoning, done=done))
    if text:
        parts.append(render_html(text, actions=actions and done, insert_note=insert_note))
    elif done:
        parts.append("" if error else "<p><em>(no text)</em></p>")
    else:
        doing = "thinking" if reasoning else "working"
        parts.append(f"<p><em>⏳ {escape(model)} is {doing}…</em></p>")
    if error:
        parts.append(f'<div class="glm-error">⚠ {escape(error)}</div>')
    if footer:
        parts.append(f'<div class="glm-footer">{escape(footer)}</div>')
    return "".join(parts)


#: Pygments token classes -> the notebook theme's CodeMirror colours (with fallbacks).
TOKEN_COLOURS = {
    "k kc kd kn kp kr kt ow": "--jp-mirror-editor-keyword-color, #008000",
    "s s1 s2 sa sb sc sd se sh si sr ss sx": "--jp-mirror-editor-string-color, #ba2121",
    "m mb mf mh mi mo il": "--jp-mirror-editor-number-color, #080",
    "c c1 ch cm cp cpf cs": "--jp-mirror-editor-comment-color, #408080",
    "nb bp": "--jp-mirror-editor-builtin-color, #008000",
    "nf fm": "--jp-mirror-editor-def-color, #00f",
    "nc nn": "--jp-mirror-editor-def-color, #00f",
    "o": "--jp-mirror-editor-operator-color, #aa22ff",
    "nd": "--jp-mirror-editor-meta-color, #aa22ff",
    "gd": "--jp-mirror-editor-error-color, #f00",
}


def token_css(scope: str) -> str:
    """CSS giving highlighted code under ``scope`` (a selector) the notebook theme's colours."""
    rules = []
    for classes, colour in TOKEN_COLOURS.items():
        selector = ",".join(f"{scope} .glm-pre .{c}" for c in classes.split())
        rules.append(f"{selector}{{color:var({colour})}}")
    return "".join(rules)


def _reply_css() -> str:
    return (
        "<style>"
        ".glm-reply .glm-code{margin:.5em 0}"
        ".glm-reply .glm-code-bar{font-size:.8em;opacity:.6}"
        ".glm-reply .glm-pre{margin:0;padding:.45em .6em;overflow-x:auto;"
        "background:var(--jp-cell-editor-background,#f7f7f7)}"
        ".glm-reply .glm-footer{opacity:.65;font-size:.85em;margin-top:.4em}"
        ".glm-reply .glm-error{color:var(--jp-error-color1,#c00);font-weight:600}"
        ".glm-reply details{opacity:.8;margin:.3em 0}" + token_css(".glm-reply") + "</style>"
    )


#: The small stylesheet each reply output carries (``glm-reply``-scoped).
REPLY_CSS = _reply_css()
